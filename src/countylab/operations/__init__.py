"""The data operations platform (数据运营服务平台): 无场景不授权, no authorisation without a scenario.

The loop: a department publishes a **scenario** (场景) → an organisation's member files a
**data-use application** (用数申请) → the **approval workflow** (审批流程: materials pre-check,
department consent, security review, expert review, final approval, public notice 公示) → the
**agreement** (授权协议), signed by both parties → the **authorisation** (授权) that creates or
updates the project, its grants, budgets and quotas, and ends on its end date.

Modules:

* ``states``: the application and scenario states and their allowed transitions, in one place;
* ``scenarios``, ``capabilities``, ``subscriptions``: the scenario list, the capability list;
* ``applications``, ``accreditation``: applications (draft → submitted → returned → resubmitted)
  and the training records of safe people;
* ``workflow`` …: the approval steps, deadlines, public notice and objections;
* ``agreements``, ``authorisations`` …: the agreement PDF and signatures; authorisation taking
  effect, expiring, renewed, suspended and revoked.
"""
