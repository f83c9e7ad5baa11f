"""Task instructions in the Natural Instructions schema, and the shared text tasks written in it.

Mishra et al. 2022, Cross-Task Generalization via Natural Language Crowdsourcing Instructions,
https://arxiv.org/abs/2104.08773 (card 32). A task's instruction has a definition, things to avoid,
and positive / negative examples with reasons; ``encode`` writes them before the input in the
paper's order (``encodeinstruction.py``: Definition, Things to Avoid, negative then positive
examples), ending with ``input: ...\\noutput:``. ``fields`` selects what goes in (the paper's
ablations); ``fields=()`` is the input alone, the "no instruction" condition.

``TASKS`` describes the shared text tasks (``../shared/data/text``) this way, grouped into
``CLUSTERS`` (sentiment, topic, question type, spam, subjectivity, intent) so multitask
fine-tuning can train on some clusters and be tested zero-shot on the others. Their answers are
the label words the prompting benchmark uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from anytask.core.errors import AnytaskError

FIELDS = ("definition", "avoid", "negative", "positive")


@dataclass(frozen=True)
class Example:
    input: str
    output: str
    reason: str


@dataclass(frozen=True)
class Instruction:
    definition: str
    answers: dict            # label -> answer text (with its leading space)
    avoid: str = ""
    positive: tuple = field(default_factory=tuple)
    negative: tuple = field(default_factory=tuple)

    def encode(self, text: str, fields: tuple = FIELDS) -> str:
        unknown = set(fields) - set(FIELDS)
        if unknown:
            raise AnytaskError(f"unknown instruction fields {sorted(unknown)}; use {', '.join(FIELDS)}")
        parts = []
        if "definition" in fields:
            parts.append(f"Definition: {self.definition}")
        if "avoid" in fields and self.avoid:
            parts.append(f"Things to Avoid: {self.avoid}")
        if "negative" in fields:
            parts += [f"Negative Example {i + 1}-\ninput: {e.input}\noutput:{e.output}\nreason: {e.reason}"
                      for i, e in enumerate(self.negative)]
        if "positive" in fields:
            parts += [f"Positive Example {i + 1}-\ninput: {e.input}\noutput:{e.output}\nreason: {e.reason}"
                      for i, e in enumerate(self.positive)]
        parts.append(f"input: {text}\noutput:")
        return "\n".join(parts)


def _sentiment(subject: str, answers: dict) -> Instruction:
    return Instruction(
        definition=f"Read the {subject} and say whether the opinion it expresses is positive or negative.",
        answers=answers, avoid="Do not judge the topic, only the opinion.",
        positive=(Example("a moving, beautifully acted story", " positive", "It praises the work."),),
        negative=(Example("dull and far too long", " positive", "It criticises the work, so it is negative."),))


TASKS: dict[str, Instruction] = {
    "sst2": _sentiment("movie review sentence", {"positive": " positive", "negative": " negative"}),
    "rotten_tomatoes": _sentiment("movie review", {"positive": " positive", "negative": " negative"}),
    "imdb": _sentiment("movie review", {"positive": " positive", "negative": " negative"}),
    "financial_phrasebank": Instruction(
        definition="Read the sentence from financial news and say whether it is good news (positive), bad news "
                   "(negative) or neither (neutral) for the company.",
        answers={"positive": " positive", "negative": " negative", "neutral": " neutral"},
        positive=(Example("Operating profit rose to EUR 13.1 mn", " positive", "Profit went up."),),
        negative=(Example("The company will hold its meeting on Monday", " positive", "Nothing good or bad: neutral."),)),
    "ag_news": Instruction(
        definition="Read the news article and give its topic: world, sports, business or science.",
        answers={"World": " world", "Sports": " sports", "Business": " business", "Sci/Tech": " science"},
        positive=(Example("The striker scored twice in the final", " sports", "It is about a football match."),),
        negative=(Example("Shares fell 3% after the earnings report", " world", "It is about markets: business."),)),
    "dbpedia": Instruction(
        definition="Read the encyclopedia entry and say what kind of thing it describes.",
        answers={"WrittenWork": " book", "Building": " building", "Album": " album", "Film": " film",
                 "NaturalPlace": " nature", "Plant": " plant", "Company": " company", "EducationalInstitution": " school",
                 "OfficeHolder": " politician", "Village": " village", "Athlete": " athlete",
                 "MeanOfTransportation": " transport", "Animal": " animal", "Artist": " artist"},
        positive=(Example("Acme Corp is an American maker of tools", " company", "It describes a firm."),),
        negative=(Example("The oak is a tree of the genus Quercus", " animal", "A tree is a plant."),)),
    "trec": Instruction(
        definition="Read the question and say what type of answer it expects: a person, a location, a number, "
                   "an entity, a description or an abbreviation.",
        answers={"HUM": " person", "LOC": " location", "NUM": " number", "ENTY": " entity", "DESC": " description",
                 "ABBR": " abbreviation"},
        positive=(Example("Who wrote Hamlet?", " person", "The answer is a person's name."),),
        negative=(Example("How many legs does a spider have?", " entity", "The answer is a number."),)),
    "sms_spam": Instruction(
        definition="Read the text message and say whether it is spam (unsolicited advertising) or a normal message.",
        answers={"spam": " spam", "ham": " normal"},
        positive=(Example("WINNER! Claim your free prize now, call 0800", " spam", "It is an unsolicited offer."),),
        negative=(Example("See you at 6 for dinner?", " spam", "A personal message is normal."),)),
    "youtube": Instruction(
        definition="Read the video comment and say whether it is spam (advertising, links, self-promotion) or a "
                   "normal comment.",
        answers={"spam": " spam", "ham": " normal"},
        positive=(Example("Check out my channel and subscribe!!!", " spam", "It promotes another channel."),),
        negative=(Example("This song never gets old", " spam", "It talks about the video: normal."),)),
    "subj": Instruction(
        definition="Read the sentence and say whether it states a personal opinion (subjective) or describes "
                   "facts or a plot (objective).",
        answers={"subjective": " subjective", "objective": " objective"},
        positive=(Example("the film is a delight from start to finish", " subjective", "It is an opinion."),),
        negative=(Example("a young man travels to Paris to find his father", " subjective", "It tells the plot."),)),
    "banking77": Instruction(
        definition="Read the bank customer's message and name what they want, in a few words.",
        answers={}),  # the 77 intents are named by their labels (see answers_for)
}

CLUSTERS = {"sentiment": ("sst2", "rotten_tomatoes", "imdb", "financial_phrasebank"), "topic": ("ag_news", "dbpedia"),
            "question": ("trec",), "spam": ("sms_spam", "youtube"), "subjectivity": ("subj",),
            "intent": ("banking77",)}


def answers_for(task: str, labels) -> dict:
    """label -> answer text for a task (its instruction's answers, else the label with ``_`` as a space)."""
    given = TASKS[task].answers if task in TASKS else {}
    return {str(c): given.get(str(c), " " + str(c).replace("_", " ")) for c in labels}
