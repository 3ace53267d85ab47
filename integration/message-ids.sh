# The journal's MESSAGE_IDs, as the suites query them (sourced by env.sh).
# They are the constants of `gate::journal::message_id` and
# `ops::sync::message_id`, stable because the catalog
# (systemd/portcullis.catalog) and operators' queries depend on them; a unit
# test (ops::sync, `the_suites_message_ids_are_the_codes`) checks each line
# here against the code.
# shellcheck disable=SC2034
PC_MID_VERIFIED=5df00955c1994ba5be84b8b6def67e0d
PC_MID_EXEMPT=8f3c2a1e6b7d4c0f9a5e2d1b3c4f6a70
PC_MID_DENIED=c7a4e0b2d9f14e6a8b3c5d7e9f102a4b
PC_MID_WARNED=2b9d6f0e4a8c41d7b5e3f1a9c7d5e3b1
PC_MID_AUDITED=9e1f3a5c7b9d4e2f8a6c4e2a0b8d6f4c
PC_MID_HEARTBEAT=43854a3b0232701f13a057de7bb8bcd5
PC_MID_TASK_STARTED=8318d2f6b992168aab5504b031ff237c
PC_MID_OBSERVER=726a6dbc984c74fd633242c1b58a00c0
PC_MID_REVOKED=12549d0d798943839163463d23f4104f
PC_MID_REVOKED_STOPPED=fb2c85036a494dc59b8b2d51d032c356
PC_MID_POLICY_INSTALLED=c2038a3cc8564ecfad1d389e5d29488e
PC_MID_POLICY_REFUSED=981466927d7f42fe9cc109b54f838001
PC_MID_POLICY_UNREACHABLE=6a307f9343344c26a68137fbe3d4a202
PC_MID_FETCH_FAILED=4e7b1c9d2a6f48e3b0d5c8a1f3e6b9d2
PC_MID_SNAPSHOT_SQUAT=0b5e8d3f7a2c4e619d4f8a7c2e5b1d93
