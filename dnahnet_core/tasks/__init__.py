"""Zero-shot tasks: plan (inputs -> typed work items) -> engine -> typed results -> io writer.

``engine`` holds every model call, ``windows`` the window geometry; one module per task
(variants, dms, knockouts + essentiality, segments, likelihood, generate); see
docs/INTERFACES.md.
"""
