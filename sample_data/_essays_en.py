"""English essay prompts, sentence pools and text rules for ``essays_en.csv``.

Every sentence here was written for EduTune. Claims are clauses without a final period
because ``attach`` adds a connective in front and the period at the end. Other entries
are complete sentences. Fields in braces are filled by ``pick_slots``.
"""

from __future__ import annotations

import re

import numpy as np

from _essay_compose import EssayLanguage, pick

PROMPTS = {
    "uniforms": "Should schools require uniforms?",
    "influence": "Describe a person who influenced you.",
}

# Inclusive word-count range per score.
LENGTH_RANGES = {1: (60, 75), 2: (65, 100), 3: (80, 140), 4: (130, 200), 5: (180, 250)}

# Probability that a word listed in MISSPELLINGS is misspelled, per score.
MISSPELLING_RATES = {1: 0.6, 2: 0.35, 3: 0.08, 4: 0.0, 5: 0.0}

MISSPELLINGS = {
    "because": "becuase", "really": "realy", "their": "thier", "believe": "beleive",
    "friends": "freinds", "school": "scool", "which": "wich", "always": "allways",
    "different": "diffrent", "people": "peple", "important": "importent",
    "clothes": "cloths", "teacher": "techer", "favorite": "favrite", "expensive": "expencive",
    "uniforms": "uniformes", "uniform": "uniforme", "nice": "nise", "money": "mony",
    "together": "togather", "every": "evry", "with": "whith", "parents": "parants",
    "learning": "lerning", "helps": "halps", "think": "thinck", "probably": "probly",
}

CONNECTIVES = {
    5: [["First,", "To begin with,", "First of all,"], ["Furthermore,", "In addition,"],
        ["Moreover,", "Finally,", "Perhaps most importantly,"]],
    4: [["First,", "One reason is that"], ["Second,", "Another reason is that"],
        ["Also,", "In addition,"], ["Finally,"]],
    3: [[""], ["Also", "Another thing is that"], ["And", "Also"]],
    2: [["", "Also", "Because", "And"]],
    1: [["", "", "and", "also", "because"]],
}

PEOPLE = [
    ("my grandmother", "she"), ("my grandfather", "he"), ("my older sister", "she"),
    ("my older brother", "he"), ("my aunt Lucia", "she"), ("my uncle Farid", "he"),
    ("my mother", "she"), ("my father", "he"), ("my piano teacher Ms. Novak", "she"),
    ("my football coach Mr. Adeyemi", "he"), ("my science teacher Mrs. Tanaka", "she"),
    ("our neighbour Mr. Costa", "he"), ("my swimming coach Ms. Reyes", "she"),
]
PRONOUN_FORMS = {
    "she": {"pronoun": "she", "possessive": "her", "object": "her"},
    "he": {"pronoun": "he", "possessive": "his", "object": "him"},
}
ACTIVITIES = ["long division", "the piano", "chess", "the guitar", "basic cooking", "English grammar"]
WORK_TASKS = ["open the family shop", "look after the vegetable garden", "catch the first bus to work",
              "prepare lessons for the day", "feed the animals on the farm"]
COMPETITIONS = ["a chess tournament", "the district spelling bee", "an important football match",
                "the school science fair"]

UNIFORMS_OFFTOPIC = [
    "My favorite subject is PE.", "Yesterday I played football with my friends after school.",
    "Our canteen has pizza on Fridays.", "My sister goes to a different school.",
    "I want a new phone for my birthday.",
]
INFLUENCE_OFFTOPIC = [
    "I have a cat called Tiger.", "My brother plays video games all day.",
    "Last summer we went to the beach.", "I like pizza more than pasta.",
    "Our school has a new gym.",
]

UNIFORMS_FOR = {
    "rich": {
        "hooks": [
            "Every school morning, millions of teenagers stand in front of their wardrobes and face the same decision: what to wear.",
            "Few school rules spark as much debate among students, parents and teachers as the dress code.",
            "Walk past any school gate at eight o'clock and you will notice at once whether its students wear a uniform.",
        ],
        "theses": [
            "In my view, schools should require uniforms, because they reduce peer pressure, save families money and help students focus on learning.",
            "I firmly believe that a uniform policy benefits students, parents and teachers alike, even though it limits personal choice.",
        ],
        "reasons": [
            ("uniforms ease the pressure to keep up with expensive fashion trends", [
                "A student whose family cannot afford designer trainers is far less likely to be mocked when everyone wears identical shoes.",
                "At my cousin's school, arguments about brand-name jackets almost disappeared after a uniform policy was introduced.",
            ]),
            ("a uniform can save families a considerable amount of money over a school year", [
                "Two or three sets of durable clothing usually cost less than a wardrobe of outfits that must change with every season.",
                "Parents no longer need to buy new outfits simply because classmates have started wearing a different style.",
            ]),
            ("uniforms help students concentrate on learning rather than on appearance", [
                "Without the daily competition over clothes, the morning routine is quicker and attention shifts to homework, projects and exams.",
                "Many teachers notice that classrooms feel calmer when clothing is no longer a constant topic of conversation.",
            ]),
            ("a shared uniform builds a sense of belonging and school pride", [
                "During sports days and field trips, the matching colours make students feel like members of one team.",
                "Wearing the school crest reminds pupils that their behaviour reflects on the whole community.",
            ]),
            ("uniforms make it easier for staff to keep students safe", [
                "On a crowded museum visit, a teacher can spot a missing pupil within seconds.",
                "Strangers who wander onto the grounds are noticed immediately because they are not dressed like the students.",
            ]),
        ],
        "counters": [
            ("Admittedly, some people argue that uniforms stop students from expressing themselves.",
             "However, young people can still show their personality through their ideas, hobbies and hairstyles, and above all through the way they treat others."),
            ("Critics sometimes claim that uniforms are old-fashioned and uncomfortable.",
             "Nevertheless, many schools now offer modern options such as polo shirts and sweatshirts, which are both practical and affordable."),
        ],
        "conclusions": [
            "In conclusion, the benefits of uniforms, from lower costs to a stronger community, clearly outweigh the loss of a little personal choice.",
            "To sum up, requiring uniforms creates a fairer and more focused environment, and I believe every school should consider adopting one.",
        ],
    },
    "medium": {
        "openers": [
            "Many schools around the world ask students to wear uniforms.",
            "School uniforms are a topic that students and parents often argue about.",
        ],
        "theses": [
            "I believe schools should require uniforms for several reasons.",
            "In my opinion, schools should make students wear uniforms.",
            "I think wearing a uniform to school is a good idea.",
        ],
        "reasons": [
            ("uniforms stop students from competing over expensive clothes", [
                "For example, nobody gets laughed at for wearing cheap shoes.",
                "At my old school, some students used to show off their brand-name jackets every day.",
            ]),
            ("uniforms save parents money", [
                "My parents only buy two shirts and two pairs of trousers for the whole year.",
                "Parents do not have to buy new clothes every time fashion changes.",
            ]),
            ("uniforms help students focus on their lessons", [
                "When everyone is dressed the same, people talk about schoolwork instead of clothes.",
                "Getting ready in the morning is faster, so I am not late for class.",
            ]),
            ("a uniform makes everyone feel part of the same school", [
                "On sports day, our whole class wears the same colour and it feels like a team.",
                "I feel proud when I wear the school logo on my sweater.",
            ]),
            ("it is easier for teachers to find their students on trips", [
                "On our trip to the zoo, the teacher could see all of us in our green sweaters.",
                "Teachers can count the class quickly when everyone wears the same jacket.",
            ]),
        ],
        "counters": [
            "Some people say uniforms are boring, but I think fairness is more important.",
            "Some students do not like uniforms, but they get used to them after a few weeks.",
        ],
        "conclusions": [
            "In conclusion, I think uniforms are a good idea because they make school fairer and cheaper.",
            "To sum up, schools should require uniforms because they help both students and parents.",
            "So, I believe uniforms make school a better place.",
        ],
    },
    "simple": {
        "theses": [
            "I think uniforms are good.",
            "Schools should have uniforms because they are good.",
            "Uniforms are good and I like them.",
        ],
        "claims": [
            "you dont have to pick clothes every morning", "everybody looks the same so nobody is sad",
            "my mom says uniforms are cheap", "uniforms look nice", "nobody can show off their expensive clothes",
            "teachers like uniforms", "my uniform is blue and I like blue", "uniforms are really good",
        ],
        "conclusions": ["That is why uniforms are good.", "So yes uniforms are good.", "The end."],
    },
}

UNIFORMS_AGAINST = {
    "rich": {
        "hooks": UNIFORMS_FOR["rich"]["hooks"],
        "theses": [
            "I believe that mandatory uniforms do more harm than good, since they limit self-expression, add costs for families and do little to improve learning.",
            "In my view, schools should not require uniforms, because the supposed benefits are weak while the drawbacks are real.",
        ],
        "reasons": [
            ("compulsory uniforms restrict students' freedom to express their personality", [
                "Teenagers are still discovering who they are, and choosing their own clothes is one of the few ways they can show it every day.",
                "A student who loves bright colours or vintage style is forced to hide that creativity for seven hours a day.",
            ]),
            ("uniforms can be surprisingly expensive for families", [
                "Official blazers and branded sweaters often cost far more than ordinary clothes from a regular shop.",
                "Families with several children may have to replace outgrown uniforms every year, on top of buying everyday clothes for weekends.",
            ]),
            ("there is little convincing evidence that uniforms improve grades or behaviour", [
                "Good teaching, small classes and supportive parents matter much more to results than the colour of a jumper.",
                "Plenty of schools without uniforms achieve excellent results, which suggests that clothing is not the deciding factor.",
            ]),
            ("uniforms are often uncomfortable and impractical", [
                "Stiff collars and heavy blazers are unpleasant on hot summer afternoons, especially in classrooms without air conditioning.",
                "Formal shoes make it awkward to run around at break time or hurry up the stairs to a laboratory.",
            ]),
            ("enforcing uniform rules wastes valuable time for teachers and students", [
                "Instead of starting the lesson, teachers end up checking ties, socks and shirt buttons.",
                "Students are sometimes given detention over a missing badge, losing learning time for a trivial reason.",
            ]),
        ],
        "counters": [
            ("Admittedly, supporters claim that uniforms reduce bullying about clothes.",
             "However, students who want to tease others simply find new targets, such as phones, bags or accents, so the real solution is teaching respect."),
            ("It is true that uniforms make mornings slightly simpler for some families.",
             "Nevertheless, a relaxed dress code with a few sensible rules would offer the same convenience without forcing everyone to look identical."),
        ],
        "conclusions": [
            "In conclusion, schools should trust students to dress sensibly and spend their energy on teaching rather than policing clothing.",
            "All things considered, mandatory uniforms cost families money and limit individuality while offering few real benefits, so schools should not require them.",
        ],
    },
    "medium": {
        "openers": UNIFORMS_FOR["medium"]["openers"],
        "theses": [
            "I believe schools should not require uniforms.",
            "In my opinion, students should be allowed to wear their own clothes.",
            "I do not think uniforms are a good idea.",
        ],
        "reasons": [
            ("students cannot show their personality when they wear a uniform", [
                "For example, I like wearing bright colours, but our uniform is grey.",
                "Clothes are a way to show what you like, such as your favourite band.",
            ]),
            ("uniforms can cost a lot of money", [
                "The official school sweater is much more expensive than a normal one.",
                "My aunt had to buy three new uniforms when my cousins grew taller.",
            ]),
            ("uniforms do not really make students better at school", [
                "My friend's school has no uniform and the students still get good grades.",
                "What helps students learn is good teachers, not the same shirt.",
            ]),
            ("uniforms are often uncomfortable", [
                "In summer the thick trousers are very hot.",
                "It is hard to play at break time in formal shoes.",
            ]),
            ("teachers waste time checking uniforms", [
                "Sometimes our teacher spends five minutes checking ties before the lesson starts.",
                "Last week a boy in my class got detention because he forgot his tie.",
            ]),
        ],
        "counters": [
            "Some people say uniforms stop bullying, but students can still be mean about other things.",
            "Some parents like uniforms because they are simple, but normal clothes are simple too.",
        ],
        "conclusions": [
            "In conclusion, I think schools should let students choose their own clothes.",
            "To sum up, uniforms have more problems than benefits.",
            "So, I believe schools should not make uniforms compulsory.",
        ],
    },
    "simple": {
        "theses": ["I think uniforms are bad.", "Schools should not have uniforms.", "I dont like uniforms at all."],
        "claims": [
            "uniforms are boring", "you cant wear what you want", "our uniform is itchy and to hot",
            "the color is ugly", "they cost alot of money", "you look the same as everybody",
            "my friends dont like them either", "uniforms are really bad",
        ],
        "conclusions": ["So uniforms are bad.", "That is why I dont like uniforms.", "The end."],
    },
}

INFLUENCE = {
    "rich": {
        "hooks": [
            "Some people shape our lives through grand gestures, but {person} changed mine through small, patient acts of kindness.",
            "If I had to name the single person who has influenced me most, I would choose {person} without a moment's hesitation.",
            "Everyone can point to someone who quietly changed the direction of their life, and for me that person is {person}.",
        ],
        "theses": [
            "Through {possessive} patience, dedication and generosity, {pronoun} taught me lessons that still guide my choices today.",
            "{pronoun} has shaped my attitude toward learning, work and other people more than anyone else I know.",
        ],
        "reasons": [
            ("{pronoun} is remarkably patient", [
                "When I struggled with {activity}, {pronoun} never raised {possessive} voice; instead, {pronoun} broke each step into smaller pieces until I understood.",
                "Even when I asked the same question five times, {pronoun} answered calmly, as if it were the first time.",
            ]),
            ("{pronoun} showed me what genuine dedication looks like", [
                "For years {pronoun} woke up before dawn to {work_task}, yet I never heard {object} complain about being tired.",
                "Whatever {pronoun} started, from repairing a bicycle to planting a garden, {pronoun} finished carefully and on time.",
            ]),
            ("{possessive} curiosity is contagious", [
                "{pronoun} keeps a notebook of questions, and on weekends we would visit the library or a museum together to look for answers.",
                "Because {pronoun} constantly asked why things worked the way they did, I started asking the same questions in my own lessons.",
            ]),
            ("{pronoun} treats everyone with respect, regardless of who they are", [
                "I once watched {object} spend an entire afternoon helping an elderly neighbour fill out confusing forms, asking for nothing in return.",
                "{pronoun} speaks to the bus driver and the head teacher in exactly the same friendly, attentive way.",
            ]),
            ("{pronoun} taught me how to recover from failure", [
                "After I lost {competition}, {pronoun} reminded me that mistakes are simply information about what to practise next.",
                "{pronoun} told me about {possessive} own disappointments, which convinced me that setbacks are a normal part of improving.",
            ]),
        ],
        "counters": [
            ("Of course, {pronoun} is not perfect, and {pronoun} would be the first to admit it.",
             "{pronoun} can be stubborn and occasionally forgetful; however, these flaws make {possessive} example feel more realistic and achievable."),
            ("Admittedly, {possessive} high standards sometimes felt strict when I was younger.",
             "Nevertheless, I now understand that {pronoun} pushed me because {pronoun} believed I could do better."),
        ],
        "conclusions": [
            "In conclusion, {person} has shaped my character more than any textbook, and I hope to pass on {possessive} patience and generosity to others one day.",
            "To sum up, the lessons I learned from {object} have made me more resilient, curious and considerate, and I am deeply grateful for them.",
        ],
    },
    "medium": {
        "openers": [
            "Everyone has someone who has changed their life in some way.",
            "Many people have helped me grow up, but one person stands out.",
        ],
        "theses": [
            "The person who influenced me the most is {person}.",
            "{person} is the person who has influenced me the most.",
            "I want to describe {person}, who has had a big influence on my life.",
        ],
        "reasons": [
            ("{pronoun} is very patient with me", [
                "When I was learning {activity}, {pronoun} helped me again and again until I understood.",
                "{pronoun} never gets angry when I make mistakes.",
            ]),
            ("{pronoun} works very hard", [
                "{pronoun} gets up early every day to {work_task}.",
                "Even when {pronoun} is tired, {pronoun} still finishes everything.",
            ]),
            ("{pronoun} is kind to everyone", [
                "For example, {pronoun} often helps our neighbours carry their shopping.",
                "{pronoun} always shares food with people who visit.",
            ]),
            ("{pronoun} taught me not to give up", [
                "When I lost {competition}, {pronoun} told me to keep practising.",
                "Because of {object}, I now try again when something is difficult.",
            ]),
            ("{pronoun} makes learning fun", [
                "{pronoun} tells great stories about the past.",
                "We often do small experiments in the kitchen together.",
            ]),
        ],
        "counters": [
            "{pronoun} is not perfect, but {pronoun} always tries {possessive} best.",
            "Sometimes {pronoun} is strict, but I know {pronoun} wants the best for me.",
        ],
        "conclusions": [
            "In conclusion, {person} is a very important person in my life.",
            "To sum up, {pronoun} has taught me to be patient and hard-working.",
            "That is why I admire {object} so much.",
        ],
    },
    "simple": {
        "theses": ["{person} influenced me.", "The person is {person}.", "I want to write about {person}."],
        "claims": [
            "{pronoun} is nice", "{pronoun} is very nice to me", "{pronoun} helps me with stuff",
            "{pronoun} buys me ice cream sometimes", "{pronoun} is funny", "we go to the park together",
            "{pronoun} is good at {activity}", "{pronoun} is really nice",
        ],
        "conclusions": ["So {pronoun} is nice.", "That is why {pronoun} influenced me.", "The end."],
    },
}

POOLS = {
    "uniforms": {"sides": {"for": UNIFORMS_FOR, "against": UNIFORMS_AGAINST}, "offtopic": UNIFORMS_OFFTOPIC},
    "influence": {"sides": {"single": INFLUENCE}, "offtopic": INFLUENCE_OFFTOPIC},
}


def pick_slots(rng: np.random.Generator, prompt_key: str) -> dict[str, str]:
    """Choose the person, pronouns and details that fill the templates of one essay."""
    if prompt_key != "influence":
        return {}
    person, pronoun = pick(rng, PEOPLE)
    return {
        "person": person,
        **PRONOUN_FORMS[pronoun],
        "activity": pick(rng, ACTIVITIES),
        "work_task": pick(rng, WORK_TASKS),
        "competition": pick(rng, COMPETITIONS),
    }


def attach(connective: str, claim: str) -> str:
    return f"{connective} {claim}.".strip()


def capitalize_first(sentence: str) -> str:
    return sentence[:1].upper() + sentence[1:]


def misspell(rng: np.random.Generator, text: str, rate: float) -> str:
    """Replace each word listed in MISSPELLINGS by its misspelling with probability ``rate``."""

    def replace(match: re.Match) -> str:
        word = match.group(0)
        wrong = MISSPELLINGS.get(word.lower())
        if wrong is None or rng.random() >= rate:
            return word
        return capitalize_first(wrong) if word[0].isupper() else wrong

    return re.sub(r"[A-Za-z']+", replace, text)


def join_run_on(rng: np.random.Generator, sentences: list[str]) -> str:
    """Join sentences into run-ons with few periods, many "and"s and lower-case starts."""
    text = sentences[0].rstrip(".")
    for sentence in sentences[1:]:
        separator = pick(rng, [" and ", " ", ", ", ". "])
        text += separator + sentence[:1].lower() + sentence[1:].rstrip(".")
    return text + "."


def render(rng: np.random.Generator, sentences: list[str], score: int) -> str:
    """Capitalize and join the sentences, then add the mistakes that fit ``score``."""
    sentences = [capitalize_first(s) for s in sentences]
    text = join_run_on(rng, sentences) if score == 1 else " ".join(sentences)
    text = misspell(rng, text, MISSPELLING_RATES[score])
    if score <= 2 and rng.random() < 0.5:
        text = re.sub(r"\bI\b", "i", text)
    return text


def count_words(text: str) -> int:
    return len(text.split())


LANGUAGE = EssayLanguage(
    prompts=PROMPTS,
    pools=POOLS,
    connectives=CONNECTIVES,
    length_ranges=LENGTH_RANGES,
    pick_slots=pick_slots,
    attach=attach,
    render=render,
    measure=count_words,
)
