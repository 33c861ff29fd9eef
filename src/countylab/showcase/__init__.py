"""The results showcase (成果展示中心): public pages, the county map, dashboards, the leader's big
screen and printable briefs, built only from what may be shown.

Every number on a showcase page is one of three kinds, named by :class:`~countylab.showcase.chartspec.Source`:
open data (一般1级), a result released through the airlock, or a DP statistic shown with its
interval.  Modules:

* ``chartspec``: the one description of a chart (bar, line, map, table, figure card) that the
  browser component (``static/chart.js``, ``static/map.js``), the dashboards and the printed briefs
  all read; ``charts`` builds them from released tables and DP answers;
* ``portal``, ``stories``, ``gallery``, ``open_data``, ``releases``, ``withdrawal``, ``cache``: the
  public pages, what may be shown on them, and taking a released result off display;
* ``maps``, ``boundaries_import``, ``map_public``: county boundaries (GeoJSON / Shapefile import,
  synthetic demo boundaries in ``countylab.demo.boundaries``) and choropleths;
* ``dashboards``, ``widgets``, ``metrics``, ``publication``, ``bigscreen``: dashboards, DP metrics
  charged to the showcase budget and cached, the security officer's approval of what goes public,
  and the big screen;
* ``briefs``, ``render_charts``: A4 PDF briefs (汇报材料) with Chinese fonts and charts;
* ``public_scan``: the check that no public page holds data traceable to a person;
* ``demo``, ``demo_map``, ``demo_dashboards``: the demo county's stories, map and dashboards.
"""
