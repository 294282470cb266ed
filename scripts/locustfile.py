"""Locust's entry file: the CLIP gateway scenarios live in clipbench/locustfile.py (tags, weights, options).

locust -f scripts/locustfile.py --headless -u 8 -r 2 -t 30s --host http://127.0.0.1:9001 --tags compare
"""

from clipbench.locustfile import ClipUser  # noqa: F401 - locust collects the User classes of this module
