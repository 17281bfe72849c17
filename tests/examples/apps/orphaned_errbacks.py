from handwritten import make_app

# A failed chord's errbacks go out as children of the chord's body, which is
# never sent: the platform cannot record them.
app = make_app("orphaned_errbacks", adopt_errbacks=False)
