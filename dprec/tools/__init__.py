"""Command-line tools over finished run directories and data: report, plots, recommend,
denoise_report and profile_data (each `dprec-NAME` and `python -m dprec.tools.NAME`)."""
