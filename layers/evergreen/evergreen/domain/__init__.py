"""Evergreen's pure domain: profiles, events and the reducers that apply them."""
