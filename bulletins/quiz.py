"""What the reader signs and answers: the statement, the "Implemented" report and the check of
understanding (up to three questions, each with two to four choices and one correct choice,
answered before an Order's acknowledgement is accepted).

The bulletin form, the amend form and the template form share these fields. Authors fill fixed
blocks of question fields (no script needed: an empty block is ignored); this module adds the
fields to a form, cleans them into what a version stores - the statement, `implemented_from`,
`implemented_prompt` and [{"question": ..., "choices": [...], "answer": index}] - and checks an
officer's answers against it.
"""

from django import forms
from django.core.exceptions import ValidationError

from bulletins.models import ImplementedFrom
from portal.validators import refuse_control_characters

SETTINGS = ("statement", "implemented_from", "implemented_prompt", "questions")

MAX_QUESTIONS = 3
MIN_CHOICES = 2
MAX_CHOICES = 4
QUESTION_MAX_LENGTH = 200
CHOICE_MAX_LENGTH = 120

ORDERS_ONLY = (
    "Only Orders are acknowledged: choose the kind Order, or clear the check of understanding."
)
NOT_QUITE = "Not quite: read the order again, then answer."
ANSWER_EVERY_QUESTION = "Answer every question."
ANSWER_FIRST = "Answer the questions below the order first, then acknowledge."


def add_settings_fields(form, settings=None):
    """Add every field of what the reader signs and answers to `form`, filled in from
    `settings` ({name: stored value} for the names in SETTINGS)."""
    settings = settings or {}
    form.fields["statement"] = forms.CharField(
        required=False,
        max_length=300,
        label="Statement the reader signs",
        help_text="Shown beside Acknowledge and recorded on each receipt. Empty: the agency's "
        "default statement.",
        validators=[refuse_control_characters],
    )
    form.fields["implemented_from"] = forms.ChoiceField(
        required=False,
        choices=ImplementedFrom.choices,
        widget=forms.RadioSelect,
        label="Report implemented",
    )
    form.fields["implemented_prompt"] = forms.CharField(
        required=False,
        max_length=200,
        label="What to report",
        help_text='For example "Armed officer posted at each public entrance".',
        validators=[refuse_control_characters],
    )
    for name in ("statement", "implemented_from", "implemented_prompt"):
        if name in settings:
            form.initial[name] = settings[name]
    add_fields(form, settings.get("questions"))
    form.question_blocks = blocks(form)
    form.response_settings_open = _is_open(form, settings)


def _is_open(form, settings):
    """For the template: show the settings unfolded when they hold something or are wrong."""
    names = ("statement", "implemented_from", "implemented_prompt", *field_names())

    def is_open():
        if form.is_bound and any(name in form.errors for name in names):
            return True
        return bool(settings.get("questions") or settings.get("implemented_from"))

    return is_open


def clean_settings(form, *, kind):
    """{name: value} of the settings in a bound, cleaned `form`, with field errors added to it
    for what is wrong. Only Orders ask for a report or a check of understanding."""
    cleaned = form.cleaned_data
    settings = {
        "statement": (cleaned.get("statement") or "").strip(),
        "implemented_from": cleaned.get("implemented_from") or "",
        "implemented_prompt": (cleaned.get("implemented_prompt") or "").strip(),
        "questions": clean(form, kind=kind),
    }
    if "implemented_from" not in form.errors and "implemented_prompt" not in form.errors:
        _check_report(form, settings["implemented_from"], settings["implemented_prompt"], kind)
    return settings


def _check_report(form, reporting, prompt, kind):
    if reporting and not prompt:
        form.add_error("implemented_prompt", "Say what to report, or choose Nobody.")
    elif prompt and not reporting:
        form.add_error("implemented_from", "Choose who reports it, or clear What to report.")
    elif reporting and kind != "order":
        form.add_error(
            "implemented_from", "Only Orders ask for a report: choose the kind Order, or Nobody."
        )


def posted_settings(form, settings):
    """Of cleaned `settings`, those whose fields the form's data held: an amendment from a
    client that never showed a field leaves that setting as it is."""
    posted = {
        name: value
        for name, value in settings.items()
        if name != "questions" and not _omitted(form, name)
    }
    if was_posted(form):
        posted["questions"] = settings["questions"]
    return posted


def _omitted(form, name):
    return form.fields[name].widget.value_omitted_from_data(
        form.data, form.files, form.add_prefix(name)
    )


def question_name(number):
    return f"question_{number}"


def choice_name(number, choice):
    return f"question_{number}_choice_{choice}"


def answer_name(number):
    return f"question_{number}_answer"


def field_names():
    for number in range(1, MAX_QUESTIONS + 1):
        yield question_name(number)
        yield from (choice_name(number, c) for c in range(1, MAX_CHOICES + 1))
        yield answer_name(number)


def add_fields(form, questions=()):
    """Add the question blocks to `form`, filled in from `questions` (stored form)."""
    for number in range(1, MAX_QUESTIONS + 1):
        form.fields[question_name(number)] = forms.CharField(
            required=False,
            max_length=QUESTION_MAX_LENGTH,
            label="Question",
            validators=[refuse_control_characters],
        )
        for choice in range(1, MAX_CHOICES + 1):
            form.fields[choice_name(number, choice)] = forms.CharField(
                required=False,
                max_length=CHOICE_MAX_LENGTH,
                label=f"Choice {choice}",
                validators=[refuse_control_characters],
            )
        form.fields[answer_name(number)] = forms.TypedChoiceField(
            required=False,
            choices=[(str(c), str(c)) for c in range(1, MAX_CHOICES + 1)],
            coerce=int,
            empty_value=None,
            widget=forms.RadioSelect,
            label="Which choice is correct?",
        )
    form.initial.update(initial(questions))


def initial(questions):
    """The blocks' field values for stored `questions` (a form's initial data)."""
    values = {}
    for number, item in enumerate(questions or [], start=1):
        values[question_name(number)] = item["question"]
        for choice, text in enumerate(item["choices"], start=1):
            values[choice_name(number, choice)] = text
        values[answer_name(number)] = str(item["answer"] + 1)
    return values


def blocks(form):
    """What a template needs to show the blocks: [{number, question, choices, answer}]."""
    return [
        {
            "number": number,
            "question": form[question_name(number)],
            "choices": [form[choice_name(number, c)] for c in range(1, MAX_CHOICES + 1)],
            "answer": form[answer_name(number)],
        }
        for number in range(1, MAX_QUESTIONS + 1)
    ]


def was_posted(form):
    """Whether the form's data holds the blocks at all (a client that never showed them, such
    as an older API caller, leaves the check as it is)."""
    return any(not _omitted(form, name) for name in field_names() if name in form.fields)


def clean(form, *, kind):
    """The stored form of the blocks of a bound, cleaned `form`, adding field errors to it for
    what is wrong. Empty blocks are ignored; `kind` is the bulletin's (only Orders ask)."""
    cleaned = form.cleaned_data
    questions = []
    for number in range(1, MAX_QUESTIONS + 1):
        names = [question_name(number), answer_name(number)]
        names += [choice_name(number, c) for c in range(1, MAX_CHOICES + 1)]
        if any(name in form.errors for name in names):
            continue
        question = _clean_block(form, number, cleaned)
        if question is not None:
            questions.append(question)
    if questions and kind != "order":
        form.add_error(question_name(1), ORDERS_ONLY)
    return questions


def _clean_block(form, number, cleaned):
    text = (cleaned.get(question_name(number)) or "").strip()
    given = [
        (choice, (cleaned.get(choice_name(number, choice)) or "").strip())
        for choice in range(1, MAX_CHOICES + 1)
    ]
    given = [(choice, value) for choice, value in given if value]
    answer = cleaned.get(answer_name(number))
    if not text and not given:
        return None  # an empty block: ignored, whatever its correct choice says
    errors = []
    if not text:
        errors.append((question_name(number), "Write the question, or clear its choices."))
    if len(given) < MIN_CHOICES:
        errors.append((choice_name(number, 1), "Give at least two choices."))
    elif len({value.casefold() for _, value in given}) < len(given):
        errors.append((choice_name(number, 1), "Two choices read the same: make each different."))
    if answer is None:
        errors.append((answer_name(number), "Choose which choice is correct."))
    elif answer not in [choice for choice, _ in given]:
        errors.append((answer_name(number), "The correct choice is empty: write it, or choose "
                                            "another."))  # fmt: skip
    for name, message in errors:
        form.add_error(name, message)
    if errors:
        return None
    return {
        "question": text,
        "choices": [value for _, value in given],
        "answer": [choice for choice, _ in given].index(answer),
    }


def check(questions):
    """Refuse `questions` that are not in the stored form (for data that did not come through
    the form's blocks, such as a template or a seed). Returns them."""
    if not isinstance(questions, list) or len(questions) > MAX_QUESTIONS:
        raise ValidationError({"questions": f"At most {MAX_QUESTIONS} questions."})
    for item in questions:
        if not _is_well_formed(item):
            raise ValidationError(
                {"questions": "Each question needs its text, two to four different choices and "
                 "the number of the correct one."}
            )  # fmt: skip
    return questions


def _is_well_formed(item):
    if not isinstance(item, dict) or set(item) != {"question", "choices", "answer"}:
        return False
    question, choices, answer = item["question"], item["choices"], item["answer"]
    return (
        isinstance(question, str)
        and 0 < len(question.strip()) <= QUESTION_MAX_LENGTH
        and isinstance(choices, list)
        and MIN_CHOICES <= len(choices) <= MAX_CHOICES
        and all(isinstance(c, str) and 0 < len(c.strip()) <= CHOICE_MAX_LENGTH for c in choices)
        and len({c.strip().casefold() for c in choices}) == len(choices)
        and type(answer) is int
        and 0 <= answer < len(choices)
    )


# The codes of a ValidationError about the officer's answers (the API's field "answers").
ANSWER_CODES = frozenset({"unanswered", "choice", "quiz"})


def check_answers(questions, answers):
    """Whether `answers` (one choice index per question) are all right. ValidationError (a code
    of ANSWER_CODES) when a question is unanswered or an answer is not one of its choices: that
    is not an attempt."""
    if not isinstance(answers, list | tuple) or len(answers) != len(questions):
        raise ValidationError(ANSWER_EVERY_QUESTION, code="unanswered")
    for question, answer in zip(questions, answers, strict=True):
        if answer is None:
            raise ValidationError(ANSWER_EVERY_QUESTION, code="unanswered")
        if type(answer) is not int or not 0 <= answer < len(question["choices"]):
            raise ValidationError("That is not one of the choices.", code="choice")
    return all(answer == q["answer"] for q, answer in zip(questions, answers, strict=True))


def posted_answers(data):
    """The officer's answers from the bulletin page's form (radios `answer-1`, `answer-2`,
    ...) as choice indexes; None for an unanswered or unreadable one. Trailing unanswered
    questions are left out (so a missing answer makes the list too short)."""
    answers = []
    for number in range(1, MAX_QUESTIONS + 1):
        try:
            answers.append(int(data.get(f"answer-{number}", "")))
        except ValueError:
            answers.append(None)
    while answers and answers[-1] is None:
        answers.pop()
    return answers
