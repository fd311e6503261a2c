"""The coordinators' web app: sign-in, year wheel, to-do, delivery log, people, feeds, health.

Routes parse the request, ask `web.access` whether the signed-in person may, call
`web.queries` for what the page shows, and render a template under `templates/web/`. No rule
about who sees what lives in a route.
"""
