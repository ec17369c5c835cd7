"""Developer tooling, imported by nothing at run time (tests/test_architecture.py checks it).

    stack          a private native stack on free ports (tests, the alert matrix, pictures)
    alert_matrix   which alerts every scenario fires on the real stack, with detection latency
    record         records every scenario's series for the replay tests (make record-alerts)
    replay         turns a recording into a promtool test of the alert rules
    calibrate      every alert's signal per scenario over many seeds, against its threshold
    bench          instrumentation overhead (make bench)
    bench_e2e      recorded-to-queryable delay through a running stack (make bench-e2e)
    drift_bench    the drift monitor's decisions and speed, against a drift library
    panel_contract every dashboard panel's query against a real Prometheus
    pictures       dashboard pictures from real paced runs (make dashboard-pictures)
    runbook_links  every runbook link from LAB_RUNBOOK_BASE in .env (make runbook-links)
"""
