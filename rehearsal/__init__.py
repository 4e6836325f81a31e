"""Rehearsing a pull request without the Pulumi CLI: the real program under Pulumi's mock runtime,
its registrations sent to the real policy pack over the analyzer's gRPC protocol.

Used by the GitOps rehearsal tests and by `make demo`; the engine itself is the one part not run.
"""
