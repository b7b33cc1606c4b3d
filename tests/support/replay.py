"""Replaying recorded TransitionWorkflow histories (tests/workflows/histories/)."""

from __future__ import annotations

import os
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.transition import TransitionWorkflow

HISTORIES = Path(__file__).parents[1] / "workflows" / "histories"


RECORD = os.environ.get("SIGNOFF_RECORD_HISTORIES") == "1"


def replayer() -> Replayer:
    return Replayer(workflows=[TransitionWorkflow], data_converter=pydantic_data_converter)
