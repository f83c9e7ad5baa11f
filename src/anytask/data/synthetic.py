"""A text task the project makes itself: short sentences about six everyday topics.

Used by ``anytask demo`` and the tests when no benchmark data is on the machine.
Sentences are built from templates and topic vocabularies, deterministically from a seed.
"""

from __future__ import annotations

import numpy as np

from anytask.data.files import LabeledData

TOPICS: dict[str, dict[str, list[str]]] = {
    "sports": {
        "thing": ["the match", "the final", "the championship", "the team", "the striker", "the coach",
                  "the marathon", "the tennis tournament", "the goalkeeper", "the league table"],
        "event": ["scored twice in the second half", "won the cup after extra time", "signed a new contract",
                  "was injured during training", "broke the world record", "lost on penalties",
                  "qualified for the playoffs", "was sent off by the referee"],
    },
    "weather": {
        "thing": ["the storm", "the forecast", "the heatwave", "heavy rain", "the snowfall", "the wind",
                  "the fog", "the thunderstorm", "the frost", "the humidity"],
        "event": ["flooded the streets overnight", "is expected to last until Friday", "closed the mountain roads",
                  "brought temperatures below freezing", "knocked out power lines", "made the air feel sticky",
                  "delayed flights at the airport", "cleared up by the afternoon"],
    },
    "cooking": {
        "thing": ["the soup", "the bread dough", "the sauce", "the roast chicken", "the cake", "the risotto",
                  "the marinade", "the pasta", "the spice mix", "the salad dressing"],
        "event": ["needs another pinch of salt", "should simmer for twenty minutes", "burned on the bottom of the pan",
                  "tastes better with fresh basil", "rose perfectly in the oven", "needs to rest before slicing",
                  "was seasoned with garlic and lemon", "came out too dry"],
    },
    "finance": {
        "thing": ["the stock market", "the central bank", "the quarterly report", "the bond yield", "the company shares",
                  "the interest rate", "the investment fund", "the currency", "the mortgage rate", "inflation"],
        "event": ["fell sharply after the announcement", "beat analyst expectations", "rose for the third week",
                  "was cut by half a point", "worried investors", "reached a ten year high",
                  "dragged down the index", "attracted new shareholders"],
    },
    "technology": {
        "thing": ["the new phone", "the software update", "the laptop", "the chip maker", "the app",
                  "the cloud service", "the operating system", "the graphics card", "the smart watch", "the router"],
        "event": ["crashes when the battery is low", "ships with a faster processor", "fixed the security bug",
                  "runs the new version of the code", "lost connection to the server", "supports wireless charging",
                  "doubled the memory capacity", "was released with a new interface"],
    },
    "travel": {
        "thing": ["the flight", "the hotel", "the train to Paris", "our holiday", "the beach resort", "the tour guide",
                  "the passport office", "the cruise", "the hostel", "the road trip"],
        "event": ["was booked for the summer", "offered a view of the old harbour", "was full of tourists",
                  "included a visit to the museum", "needed a visa in advance", "left from the central station",
                  "stopped at three islands", "was cheaper than we expected"],
    },
}

FRAMES = ["{thing} {event}.", "Yesterday {thing} {event}.", "I heard that {thing} {event}.",
          "Apparently {thing} {event} again.", "Did you see that {thing} {event}?",
          "Everyone is talking about how {thing} {event}.", "News: {thing} {event}."]


def make_topic_task(n_per_class: int = 60, *, seed: int = 0, test_fraction: float = 0.5) -> tuple[LabeledData, LabeledData]:
    """``(train, test)`` of distinct sentences labelled with their topic."""
    rng = np.random.default_rng(seed)
    train_x, train_y, test_x, test_y = [], [], [], []
    for topic, vocab in TOPICS.items():
        pool = [f.format(thing=t, event=e) for f in FRAMES for t in vocab["thing"] for e in vocab["event"]]
        pool = [s[0].upper() + s[1:] for s in pool]
        picks = rng.choice(len(pool), size=min(2 * n_per_class, len(pool)), replace=False)
        n_test = int(round(len(picks) * test_fraction))
        for j, i in enumerate(picks):
            (test_x if j < n_test else train_x).append(pool[i])
            (test_y if j < n_test else train_y).append(topic)
    return (LabeledData(train_x, np.asarray(train_y, dtype=object), "topics/train"),
            LabeledData(test_x, np.asarray(test_y, dtype=object), "topics/test"))
