"""Sweep bookkeeping: point directories and result files (`points`), the results table with
mean +- std over seeds (`table`) and PNG plots (`plots`). The commands are cli/sweep.py and
cli/evaluate.py."""
