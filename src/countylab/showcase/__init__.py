"""The results showcase (成果展示中心): public pages, the county map, dashboards, the leader's big
screen and printable briefs, built only from what may be shown.

Every number on a showcase page is one of three kinds, named by :class:`~countylab.showcase.chartspec.Source`:
open data (一般1级), a result released through the airlock, or a DP statistic shown with its
interval.  Modules:

* ``chartspec``: the one description of a chart (bar, line, map, table, figure card) that the
  browser component (``static/chart.js``, ``static/map.js``), the dashboards and the printed briefs
  all read;
* ``portal``, ``stories``, ``gallery``, ``open_data``: the public pages;
* ``geo``, ``maps``: county boundaries (GeoJSON / Shapefile import, synthetic demo boundaries) and
  choropleths;
* ``dashboards``, ``metrics``, ``publication``: dashboards, DP metrics charged to the showcase
  budget and cached, and the security officer's approval of what goes public;
* ``briefs``: A4 PDF briefs (汇报材料) with Chinese fonts and charts.
"""
