"""Quick data inspection, headless: overview figures, jobs, integrations and the SQL console core.

One import point for the UI; the pieces live in small modules beside this one.
"""

from __future__ import annotations

from iofold_tui.data.inspect_checks import KINDS as WARNING_KINDS
from iofold_tui.data.inspect_checks import DataWarning, detect_warnings, scoped_recount_sql
from iofold_tui.data.integrations import IntegrationInfo, list_integrations
from iofold_tui.data.job_payloads import JobPayload, describe_job_payload
from iofold_tui.data.jobs import JOB_STATUSES, JOB_TYPES, JobCursor, JobPage, JobRow, list_jobs
from iofold_tui.data.overview import (
    AccuracyBucket,
    EvalSetProgress,
    IntegrationCount,
    JobGroup,
    JobTypeSummary,
    Overview,
    TableCount,
    Workspace,
    overview,
)
from iofold_tui.data.sql_presets import Preset, presets
from iofold_tui.data.sqlconsole import Page, ResultCursor, SqlConsole

__all__ = [
    "JOB_STATUSES", "JOB_TYPES", "WARNING_KINDS", "AccuracyBucket", "DataWarning", "EvalSetProgress",
    "IntegrationCount", "IntegrationInfo", "JobCursor", "JobGroup", "JobPage", "JobPayload", "JobRow",
    "JobTypeSummary", "Overview", "Page", "Preset", "ResultCursor", "SqlConsole", "TableCount", "Workspace",
    "describe_job_payload", "detect_warnings", "list_integrations", "list_jobs", "overview", "presets",
    "scoped_recount_sql",
]
