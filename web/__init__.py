"""The coordinators' web app: sign-in, year wheel, to-do, delivery log, people, feeds, health.

Routes parse the request, ask `web.access` whether the signed-in person may, call
the page queries in `service` (`web_views`, `todo_view`, `delivery_log`) for what the page
shows, and render a template under `templates/web/`. No rule
about who sees what lives in a route.
"""
