import time
from pathlib import Path

from tests.web.conftest import World, sign_in


def test_smoke(world: World) -> None:
    c = world.client()
    t = time.perf_counter()
    sign_in(c, "samordnare", world.passwords["samordnare"])
    print("signin", time.perf_counter() - t)
    for path in [
        "/",
        "/att-gora",
        "/arshjul",
        "/arshjul/utskrift",
        "/leveranslogg",
        "/personer",
        "/healthz",
        "/metrics",
    ]:
        t = time.perf_counter()
        r = c.get(path)
        print(path, r.status_code, len(r.text), round(time.perf_counter() - t, 3))
    Path("/tmp/web1-wheel.html").write_text(c.get("/arshjul").text)
    Path("/tmp/web1-todo.html").write_text(c.get("/att-gora").text)
    Path("/tmp/web1-log.html").write_text(c.get("/leveranslogg").text)
    Path("/tmp/web1-metrics.txt").write_text(c.get("/metrics").text)
