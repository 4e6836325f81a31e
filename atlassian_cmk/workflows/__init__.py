"""The break-glass workflows: revoke and restore as functions that return a report.

`revoke.revoke` and `restore.restore` carry the whole workflow (read every generation they act on
and who is acting, guard, confirmation, converge, verify, records, stack-file follow-up) and return
a `report.WorkflowReport`; `cli/` parses flags, passes a `report.Session` (AWS clients, clock, the
confirmation prompt and progress as callbacks) and renders. Pure parts: `targets` (which key
generations each command acts on), `report` (the report model), `changes` (per-key outcomes),
`record_plan` (the tags that record a change), `results` (the JSON rows); the rules before any change are
`atlassian_cmk.break_glass`; the AWS I/O is `atlassian_cmk.aws`. Nothing here knows argparse or
the terminal.
"""
