"""Quick checks: a short multiple-choice or predict-the-output question where a module is only reading.

Not graded: a quick check shows right or wrong with the reason and never
raises, so a wrong guess does not stop the notebook. In a notebook::

    from careops.checks.formative import quick_check
    quick_check("data-rules", answer)                     # multiple choice: a letter
    quick_check("naive-downtime", guess, observed=seen)   # predict the output: compared with what ran

A multiple-choice question's right letter is kept as a digest (as the course's
answer keys are): the explanation of each option says why it is right or wrong.
A prediction is compared with what the learner's own run observed.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from careops.report import CheckReport


def answer_digest(question: str, answer: str) -> str:
    """The digest a question's right answer is kept as."""
    return hashlib.sha256(f"careops-quick-check:{question}:{answer.strip().lower()}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Question:
    """One quick check: the options (letter or value -> why it is right or wrong) and the right one's digest."""

    id: str
    title: str
    why: dict[str, str] = field(default_factory=dict)
    digest: str = ""  # empty: a prediction, compared with what was observed


QUESTIONS = {q.id: q for q in (
    Question("data-rules", "Quick check: can this admission go into a test fixture?", {
        "a": "not quite: look at the phone number again",
        "b": "the SSN, e-mail and MRN carry their markers; 555-2368 is outside 555-0100..0199, so it is treated as "
             "real until it is replaced",
        "c": "999 is the area that is never issued: 999-12-3456 is synthetic",
        "d": "example.org is reserved for examples: the address is synthetic",
    }, "c4552c35af05aa8e"),
    Question("a99", "Quick check: what does ADT-Legacy answer to ADT^A99?", {
        "AA": "AA would mean 'stored'; an event the service does not handle is not stored",
        "AE": "AE is for a message the service understands but whose content is wrong (a missing PID)",
        "AR": "an unsupported event is rejected outright: AR, with the reason 'unsupported message type'",
    }),
    Question("layers", "Quick check: is the deleted extract in the image?", {
        "a": "a later RUN rm only hides the file in a new layer; the layer that added it still holds it",
        "b": "every layer ships with the image: docker save or docker history show the extract to anyone who has "
             "the image. Keep it out of the build context with .dockerignore",
        "c": "the user the container runs as does not change what the image's layers hold",
    }, "78c6f0503713b484"),
    Question("naive-downtime", "Quick check: how many requests did the naive release fail?", {
        "none": "the router had no release to send them to for a while",
        "a few": "a gap of a second or two at 110 requests per second is already a hundred or more",
        "many": "every request sent during the gap failed: stop, start and the router's reload take seconds",
    }),
    Question("pseudonyms", "Quick check: is a pseudonymised test database personal data?", {
        "a": "while anyone holds the key back to the names, the data can be re-identified",
        "b": "GDPR treats pseudonymised data as personal data: a key exists that links it back to people",
        "c": "whether it holds diagnoses changes how sensitive it is, not whether it is personal data",
    }, "41d049a679af3637"),
)}


def quick_check(question: str, answer: object, *, observed: object = None) -> CheckReport:
    """Right or wrong, with the reason; never raises (not graded). ``observed``: the run's real outcome."""
    q = QUESTIONS.get(question)
    if q is None:
        raise KeyError(f"no quick check {question!r}: expected one of {', '.join(QUESTIONS)}")
    report = CheckReport(q.title)
    given = str(answer or "").strip()
    key = given.lower() if q.digest else given
    if not given:
        report.fail("not answered yet", hint="write your answer between the quotes and run the cell again")
        return report
    if q.digest:
        right = answer_digest(q.id, key) == q.digest
    else:
        right = key.lower() == str(observed).strip().lower()
    why = next((text for option, text in q.why.items() if option.lower() == key.lower()), "")
    report.check(right, f"your answer: {given}" + (f" (the run: {observed})" if observed is not None else ""),
                 hint=why or f"answer with one of: {', '.join(q.why)}")
    if right and why:
        report.check(True, why)
    return report


__all__ = ["QUESTIONS", "Question", "answer_digest", "quick_check"]
