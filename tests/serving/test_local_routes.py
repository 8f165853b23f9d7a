"""The router's part in mixes and ensembles, against small in-process V2 servers whose answers the test sets:
shares split every run of requests within one request, an ensemble waits for its slowest member and answers
with the majority (the first member's answer where outputs are not class scores), and groups outside the
route get no request."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from ipa_ext.serving.http import Request, Response, json_response, serve_connection
from ipa_ext.serving.router import Router
from ipa_ext.serving.routes import RoundRobin, Route, majority
from ipa_ext.serving.v2 import encode


class FakeServer:
    """A V2 server of one model that answers every infer request with ``output`` after ``delay_s``."""

    def __init__(self, output: np.ndarray, delay_s: float = 0.0, status: int = 200) -> None:
        self.output, self.delay_s, self.status = output, delay_s, status
        self.calls = 0
        self.server: asyncio.AbstractServer | None = None

    async def handle(self, req: Request) -> Response:
        if req.method == "GET":
            return json_response(200, {"name": "m", "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 2]}]})
        self.calls += 1
        await asyncio.sleep(self.delay_s)
        if self.status != 200:
            return json_response(self.status, {"error": "no"})
        body, headers = encode({"model_name": "m"}, [("y", self.output)], "outputs", binary=True)
        return Response(200, body, headers)

    async def start(self) -> int:
        self.server = await asyncio.start_server(lambda r, w: serve_connection(r, w, self.handle), "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]


def scores(cls: int, n: int = 3) -> np.ndarray:
    out = np.zeros((1, n), dtype=np.float32)
    out[0, cls] = 1.0
    return out


async def close(router: Router, servers: dict[str, FakeServer]) -> None:
    await router.close()
    for srv in servers.values():
        assert srv.server is not None
        srv.server.close()


async def stage_with(servers: dict[str, FakeServer], route: Route | None) -> Router:
    router = Router(["s"], drop_limit_s=10)
    for group, srv in servers.items():
        await router.add_endpoint("s", group, await srv.start(), "m", None, group=group, variant=f"v-{group}")
    await router.set_route("s", route)
    return router


def run(coro):
    return asyncio.run(coro)


def test_round_robin_keeps_every_run_of_requests_within_one_of_the_shares():
    rr, route = RoundRobin(), Route.mix({"a": 0.75, "b": 0.25})
    picks = [rr.pick(route, {"a", "b"}) for _ in range(41)]
    for n in range(1, 42):
        assert abs(picks[:n].count("a") - 0.75 * n) <= 1, picks
    assert picks[:4].count("b") == 1 and picks.count("b") in (10, 11)
    assert RoundRobin().pick(route, {"b"}) == "b" and RoundRobin().pick(route, set()) is None
    three = RoundRobin()
    route3 = Route.mix({"a": 0.5, "b": 0.3, "c": 0.2})
    picks = [three.pick(route3, {"a", "b", "c"}) for _ in range(100)]
    assert (picks.count("a"), picks.count("b"), picks.count("c")) == (50, 30, 20)


def test_majority_vote_ties_and_outputs_that_are_not_class_scores():
    def out(cls):
        return {"y": scores(cls)}

    v = majority([out(0), out(2), out(2)])
    assert (v.answer, v.votes, v.members, v.rule, v.outvoted) == (2, 2, 3, "majority", True)
    v = majority([out(1), out(2)])  # a tie: the first (most accurate) member's class
    assert (v.answer, v.votes, v.outvoted) == (1, 1, False)
    boxes = {"y": np.zeros((1, 5, 6), dtype=np.float32)}
    v = majority([boxes, out(2), out(2)])
    assert v.rule == "first-member" and v.answer is None
    v = majority([out(1), {"y": scores(2, n=4)}, {"y": scores(2, n=4)}])  # other class counts: not comparable
    assert v.rule == "first-member" and v.answer == 1


def test_a_mix_route_splits_by_shares_and_counts_each_variant():
    async def go():
        servers = {"a": FakeServer(scores(0)), "b": FakeServer(scores(1)), "idle": FakeServer(scores(2))}
        router = await stage_with(servers, Route.mix({"a": 3, "b": 1}))
        done = await asyncio.gather(*(router.route() for _ in range(41)))
        counts = router.take_counts()
        await close(router, servers)
        return servers, done, counts

    servers, done, (served, votes) = run(go())
    assert [d.status for d in done] == ["served"] * 41
    assert (servers["a"].calls, servers["b"].calls, servers["idle"].calls) == (31, 10, 0)
    assert served == {"s": {"v-a": 31, "v-b": 10}} and votes == {}


def test_an_ensemble_waits_for_its_slowest_member_and_answers_the_majority():
    async def go():
        servers = {"first": FakeServer(scores(0)), "slow": FakeServer(scores(2), delay_s=0.3),
                   "third": FakeServer(scores(2))}
        router = await stage_with(servers, Route.ensemble(["first", "slow", "third"]))
        done = await asyncio.gather(*(router.route() for _ in range(5)))
        counts = router.take_counts()
        await close(router, servers)
        return servers, done, counts

    servers, done, (served, votes) = run(go())
    assert all(s.calls == 5 for s in servers.values())
    assert all(d.status == "served" and d.latency_s >= 0.3 for d in done)
    assert all(d.votes["s"].answer == 2 and d.votes["s"].outvoted for d in done)
    assert served == {"s": {"v-first": 5, "v-slow": 5, "v-third": 5}} and votes == {"s": {"outvoted": 5}}


@pytest.mark.parametrize("status, ends", [(500, "failed"), (503, "dropped")])
def test_an_ensemble_member_that_fails_or_drops_ends_the_request_so(status, ends):
    async def go():
        servers = {"a": FakeServer(scores(0)), "b": FakeServer(scores(0), status=status)}
        router = await stage_with(servers, Route.ensemble(["a", "b"]))
        done = await router.route()
        await close(router, servers)
        return done

    done = run(go())
    assert done.status == ends and done.stage == "s" and not done.votes
