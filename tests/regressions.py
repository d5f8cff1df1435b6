"""Pinned worst cases of the greedy, found by ``hypothesis.target`` on its gap to the optimum.

Each factory returns ``(instance, budget_usd)``: inputs only. The optimum is recomputed at
test time (brute force and the exact engines, ``tests/test_invariants.py::
test_pinned_greedy_worst_cases``); no result is hard-coded here. The gaps quoted are what
the hunt measured when the case was pinned (``benchmarks/hunt_greedy_gap.py``), for the
reader, not for the test.
"""

from __future__ import annotations

import robatch_opt as ro

__all__ = ["GREEDY_WORST_CASES"]


def greedy_worst_partial_call_coupling():
    """Gap 78.3 % when found (hunt seed 0, 1,940 instances).

    Three queries of one task, budget equal to the cheapest plan's exact cost. The cheapest
    *amortized* option (m1, b=4) serves them in one call with a free seat; (m2, b=3) has a
    slightly higher amortized cost but the *same* exact cost (one full call, same system
    price, free output) and far higher utility. The greedy starts at the amortized minimum,
    its LP has no slack to spend, and no single-query move helps (moving one query opens a
    second call): only moving all three together reaches the optimum.
    """
    inst = ro.Instance(
        models=[ro.Model('m0', 3.7, 0.2, 434, (1,)), ro.Model('m1', 3.7, 0.0, 1089, (1, 4)),
                ro.Model('m2', 3.7, 0.0, 831, (3,))],
        tasks=[ro.Task('t0', 200.0)],
        query_task=[0, 0, 0],
        input_tokens=[155.0, 199.0, 87.0],
        output_tokens=[[60.0, 40.0, 25.0], [35.0, 23.0, 11.0], [89.0, 44.0, 54.0]],
        utility=[[0.1254543662071228, 0.6789363026618958, 1.1920928955078125e-07, 0.6789363026618958],
                 [0.9915739893913269, 0.5529590845108032, 0.28976261615753174, 0.9950833916664124],
                 [0.9915739893913269, 0.5529590845108032, 0.28976261615753174, 0.9950833916664124]])
    return inst, 0.0023717


def greedy_worst_two_query_swap():
    """Gap 55.8 % when found (hunt seed 1, 1,852 instances).

    Budget equal to the cheapest plan's exact cost again, but the optimum needs two
    queries to move at once: query 0 leaves the shared (m1, b=4) call for its own (m1, b=1)
    call (utility 0 -> 1) while query 1 takes its seat, leaving (m2, b=2). Each move alone
    opens a call and breaks the budget, so the greedy's single moves cannot find it.
    """
    inst = ro.Instance(
        models=[ro.Model('m0', 2.0, 4.0, 165, (2, 3)), ro.Model('m1', 0.1, 1.0, 183, (1, 2, 4)),
                ro.Model('m2', 1.0, 0.2, 215, (2,))],
        tasks=[ro.Task('t0', 14.0)],
        query_task=[0, 0, 0],
        input_tokens=[35.0, 1.0, 33.0],
        output_tokens=[[15.0, 3.0, 13.0], [5.0, 33.0, 99.0], [12.0, 9.0, 14.0]],
        utility=[[0.0, 0.5501554012298584, 1.0, 0.9458727240562439, 0.0, 0.40304046869277954],
                 [0.0, 0.09016890823841095, 0.0, 0.0, 0.0, 0.0],
                 [0.10653732717037201, 0.0, 0.5981863141059875, 0.43872982263565063, 0.7913711071014404,
                  0.5700510740280151]])
    return inst, 5.5e-05


GREEDY_WORST_CASES = {
    "partial_call_coupling": greedy_worst_partial_call_coupling,
    "two_query_swap": greedy_worst_two_query_swap,
}
