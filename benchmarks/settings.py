"""How much each section measures: a full run or a quick one (``--quick``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    s1_tests: int  # timed tests of each variant per round
    s1_warmup: int  # untimed tests of each variant at the start of a round
    s1_rounds: int
    s2_rounds: int
    s2_tests: dict[str, int]
    s3_rounds: int
    s3_class_repeats: int
    s3_warm_pairs: int
    s4_rounds: int
    s4_control: bool  # also run the CPU-bound control suite
    s5_rounds: int
    s6_rounds: int
    s5_callgrind: bool = True  # also count instructions under valgrind (about 2 minutes)

    @classmethod
    def make(cls, quick: bool) -> Settings:
        if quick:
            return cls(
                40,
                8,
                3,
                1,
                {
                    "tt_commit": 10,
                    "fsa_commit": 10,
                    "core_insert": 10,
                    "delete_all": 3,
                    "truncate": 2,
                    "drop_create": 1,
                },
                1,
                1,
                1,
                1,
                False,
                10,
                1,
                False,
            )
        return cls(
            200,
            20,
            15,
            7,
            {
                "tt_commit": 30,
                "fsa_commit": 30,
                "core_insert": 30,
                "delete_all": 12,
                "truncate": 8,
                "drop_create": 4,
            },
            5,
            5,
            5,
            9,  # section 4: its medians of 5 rounds moved by 10 % between runs minutes apart
            True,
            40,
            3,
        )
