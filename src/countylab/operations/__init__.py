"""The data operations platform (数据运营服务平台): 无场景不授权, no authorisation without a scenario.

The loop: a department publishes a **scenario** (场景) → an organisation's member files a
**data-use application** (用数申请) → the **approval workflow** (审批流程: materials pre-check,
department consent, security review, expert review, final approval, public notice 公示) → the
**agreement** (授权协议), signed by both parties → the **authorisation** (授权) that creates or
updates the project, its grants, budgets and quotas, and ends on its end date.

Modules:

* ``states``: the application and scenario states and their allowed transitions, in one place,
  and ``move`` (a version-checked update: one winner);
* ``scenarios``, ``capabilities``, ``subscriptions``, ``public``, ``scenario_todos``: the scenario
  list, the capability list, subscriptions by field, the public scenario list;
* ``applications``, ``attachments``, ``application_view``, ``accreditation``: applications
  (draft → submitted → returned → resubmitted), their PDF attachments, and safe people (培训合格);
* ``workflow``, ``workflow_config`` (+ ``workflow_default.toml``), ``workflow_view``,
  ``workflow_todos``, ``publicity``, ``overview``: the approval steps and deadlines, the public
  notice and objections, the operator's view;
* ``terms``: the approved terms, one frozen value; ``agreement_terms``, ``agreements``
  (+ ``agreement_pdf.html``), ``reauth``: the agreement PDF, its versions and signatures (the
  password asked again);
* ``authorisations``, ``enforcement``, ``expiry``, ``emergency``, ``disclosure``: authorisations
  in force, the one access check, the end date and reminders, emergency grants, the disclosure
  report;
* ``demo``, ``demo_applications``, ``demo_agreements``: the demo county's scenarios, applications
  at every stage and an agreement waiting for a signature.
"""
