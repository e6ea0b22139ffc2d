"""`sysdig-kit replay`: replay a replay log against a program under ptrace (issue 13).

Stdlib only, so that the same files run on the board (no pandas there): `ptrace` (ctypes
ptrace, register tables per architecture, tracee memory), `logfile` (the JSON Lines replay
log and per-thread cursors), `policy` (data/replayer/policy.csv: inject / execute / restore),
`engine` (the replay loop), `launcher` (start a command for a capture: vDSO hidden, no ASLR).
The host side (CLI, board runs) is `sysdig_kit.replay_run`.
"""
