"""News and social sentiment: text sources (RSS/Atom feeds, exported social posts), scored by
VADER (its lexicon ships in the ``vaderSentiment`` wheel: nothing is downloaded at run time),
matched to coins, aggregated per UTC hour and day, and aligned causally to bars."""
