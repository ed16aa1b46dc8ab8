"""Question templates and generator for ``questions_en.csv`` and ``questions_zh.csv``.

Every template here was written for EduTune. Numbers in braces are drawn fresh for
each question by ``draw_numbers``. Openers and closers such as "Quick question:" or
"老师，" are shared by all topics, so the topic can only be learned from the wording
of the question itself.
"""

from __future__ import annotations

import numpy as np

from _essay_compose import pick

TEMPLATES_EN = {
    "fractions": [
        "How do I add {a}/{b} and {c}/{d}?",
        "Why do I need a common denominator to subtract {a}/{b} from {c}/{d}?",
        "Which is bigger, {a}/{b} or {c}/{d}?",
        "How do I simplify {n}/{m} to lowest terms?",
        "What is {a}/{b} of {k}?",
        "How do you turn {a}/{b} into a decimal?",
        "Why does dividing by {a}/{b} give a bigger number?",
        "Can someone explain how to multiply {a}/{b} by {c}/{d}?",
        "How do I write {w} {a}/{b} as an improper fraction?",
        "What is the difference between the numerator and the denominator?",
        "Is {a}/{b} the same as {a2}/{b2}?",
        "A pizza is cut into {b} slices and I eat {a}. What fraction of the pizza is left?",
    ],
    "geometry": [
        "How do I find the area of a triangle with base {x} cm and height {y} cm?",
        "What is the circumference of a circle with radius {r} cm?",
        "Two angles of a triangle are {p} and {q} degrees. What is the third angle?",
        "How do I use the Pythagorean theorem when the legs are {x} and {y}?",
        "What is the volume of a box that measures {x} by {y} by {z} cm?",
        "What do the interior angles of a {polygon} add up to?",
        "What is the difference between perimeter and area?",
        "How can I tell if two triangles are similar?",
        "Why are alternate angles equal when two lines are parallel?",
        "How do I find the perimeter of a rectangle {x} m long and {y} m wide?",
        "What does it mean for a shape to have rotational symmetry?",
        "How do I draw an angle of {p} degrees with a protractor?",
    ],
    "algebra": [
        "How do I solve {u}x + {v} = {rhs}?",
        "What does it mean to expand {u}(x + {v})?",
        "How do I factor x^2 + {s}x + {t}?",
        "What is the slope of the line through ({x1}, {y1}) and ({x2}, {y2})?",
        "If y = {u}x - {v}, what is y when x = {h}?",
        "Why do I flip the inequality sign when I divide by a negative number?",
        "How do I solve the system x + y = {s} and x - y = {diff}?",
        "Why do we use letters like x and y instead of numbers?",
        "How do I simplify {u}x + {v}x - {rhs}?",
        "How can I check whether x = {h} is a solution of {u}x - {v} = {rhs}?",
        "Where does the line y = {u}x + {v} cross the y-axis?",
        "Why does {v} change sign when I move it to the other side of the equation?",
    ],
    "statistics": [
        "How do I find the mean of {values}?",
        "What is the median of {values}?",
        "What is the mode of {values}?",
        "How do I work out the range of {values}?",
        "What is the probability of rolling a {die} on a six-sided die?",
        "If I flip a coin {flips} times, how many heads should I expect?",
        "When should I use a bar chart instead of a line graph?",
        "What is an outlier, and how does it change the mean?",
        "How do I read a box plot?",
        "Why is the median better than the mean when there are outliers?",
        "A bag has {red} red and {blue} blue marbles. What is the chance of picking red?",
        "How do I make a frequency table from a survey of my class?",
    ],
}

TEMPLATES_ZH = {
    "分数": [
        "{a}/{b}加{c}/{d}等于多少？怎么算？",
        "为什么{c}/{d}减{a}/{b}要先通分？",
        "{a}/{b}和{c}/{d}哪个大？",
        "{n}/{m}怎么约分成最简分数？",
        "{k}的{a}/{b}是多少？",
        "怎样把{a}/{b}化成小数？",
        "为什么除以{a}/{b}得到的数反而变大了？",
        "{a}/{b}乘{c}/{d}怎么算？",
        "带分数{w}又{a}/{b}怎么化成假分数？",
        "分子和分母分别表示什么意思？",
        "{a}/{b}和{a2}/{b2}相等吗？",
        "一个披萨切成{b}块，我吃了{a}块，还剩几分之几？",
    ],
    "几何": [
        "底是{x}厘米、高是{y}厘米的三角形，面积怎么求？",
        "半径是{r}厘米的圆，周长是多少？",
        "三角形的两个角分别是{p}度和{q}度，第三个角是多少度？",
        "直角三角形的两条直角边是{x}和{y}，斜边怎么求？",
        "长{x}厘米、宽{y}厘米、高{z}厘米的长方体，体积是多少？",
        "{polygon}的内角和是多少度？",
        "周长和面积有什么区别？",
        "怎么判断两个三角形相似？",
        "两条直线平行时，为什么内错角相等？",
        "长{x}米、宽{y}米的长方形，周长是多少？",
        "什么样的图形是旋转对称图形？",
        "用量角器怎么画一个{p}度的角？",
    ],
    "代数": [
        "方程{u}x + {v} = {rhs}怎么解？",
        "{u}(x + {v})怎么去括号？",
        "x² + {s}x + {t}怎么因式分解？",
        "经过点({x1}, {y1})和({x2}, {y2})的直线，斜率是多少？",
        "y = {u}x - {v}，当x = {h}时，y等于多少？",
        "不等式两边同时除以负数，为什么要改变不等号的方向？",
        "方程组x + y = {s}，x - y = {diff}怎么解？",
        "为什么数学里要用字母表示数？",
        "{u}x + {v}x - {rhs}怎么合并同类项？",
        "怎么检验x = {h}是不是方程{u}x - {v} = {rhs}的解？",
        "直线y = {u}x + {v}和y轴的交点在哪里？",
        "把{v}移到等号另一边时，为什么要变号？",
    ],
    "统计": [
        "{values}的平均数怎么求？",
        "{values}的中位数是多少？",
        "{values}的众数是哪个？",
        "{values}的极差怎么算？",
        "掷一枚骰子，掷出{die}点的概率是多少？",
        "抛硬币{flips}次，大约会有几次正面朝上？",
        "什么时候用条形统计图，什么时候用折线统计图？",
        "什么是异常值？它会怎样影响平均数？",
        "箱线图应该怎么看？",
        "有极端值的时候，为什么中位数比平均数更能代表一般水平？",
        "袋子里有{red}个红球和{blue}个蓝球，摸到红球的概率是多少？",
        "怎样把全班的调查结果整理成频数分布表？",
    ],
}

# Openers and closers are topic-neutral. Empty strings make a bare question likelier.
OPENERS_EN = ["", "", "", "Quick question: ", "I'm stuck on my homework. ",
              "Sorry if this is a silly question, but ", "Can you help me? ",
              "We did this in class today and I still don't get it. "]
CLOSERS_EN = ["", "", "", " I keep getting a different answer from the book.",
              " Please explain step by step.", " Is there an easy trick?"]
OPENERS_ZH = ["", "", "", "老师，", "请问，", "老师好，请问", "我有个问题：", "这道题我不会："]
CLOSERS_ZH = ["", "", "", "能讲讲步骤吗？", "我算出来的和答案不一样。", "有没有简单的方法？"]
POLYGONS = {"en": ["pentagon", "hexagon", "octagon", "decagon"], "zh": ["五边形", "六边形", "八边形", "十边形"]}
LIST_SEPARATORS = {"en": ", ", "zh": "、"}

TEMPLATES = {"en": TEMPLATES_EN, "zh": TEMPLATES_ZH}
OPENERS = {"en": OPENERS_EN, "zh": OPENERS_ZH}
CLOSERS = {"en": CLOSERS_EN, "zh": CLOSERS_ZH}
MAX_ATTEMPTS_PER_QUESTION = 200


def _draw_fraction_numbers(rng: np.random.Generator) -> dict[str, int]:
    a = int(rng.integers(1, 9))
    b = int(rng.integers(a + 1, 13))
    c = int(rng.integers(1, 9))
    d = int(rng.integers(c + 1, 13))
    scale = int(rng.integers(2, 6))
    numerator = int(rng.integers(1, 6))
    denominator = int(rng.integers(numerator + 1, 10))
    common_factor = int(rng.integers(2, 5))
    return {
        "a": a, "b": b, "c": c, "d": d, "w": int(rng.integers(1, 5)),
        # b2 is off by one in about a third of questions, so that not every pair is equivalent.
        "a2": a * scale, "b2": b * scale + int(rng.random() < 0.3),
        "n": numerator * common_factor, "m": denominator * common_factor,
        "k": b * int(rng.integers(2, 10)),
    }


def _draw_geometry_numbers(rng: np.random.Generator, language: str) -> dict:
    p = int(rng.integers(20, 101))
    return {
        "x": int(rng.integers(2, 16)), "y": int(rng.integers(2, 16)), "z": int(rng.integers(2, 16)),
        "r": int(rng.integers(1, 13)), "p": p, "q": int(rng.integers(20, 161 - p)),
        "polygon": pick(rng, POLYGONS[language]),
    }


def _draw_algebra_numbers(rng: np.random.Generator) -> dict[str, int]:
    root1, root2 = int(rng.integers(1, 8)), int(rng.integers(1, 8))
    x_total = root1 + root2
    # x - y = diff has an integer solution because diff and x_total have the same parity.
    difference = x_total - 2 * int(rng.integers(1, x_total))
    x1 = int(rng.integers(-5, 6))
    u, v = int(rng.integers(2, 10)), int(rng.integers(1, 13))
    return {
        "u": u, "v": v, "rhs": int(rng.integers(u + v, 51)), "h": int(rng.integers(1, 10)),
        "s": x_total, "t": root1 * root2, "diff": difference,
        "x1": x1, "y1": int(rng.integers(-9, 10)),
        "x2": x1 + int(rng.integers(1, 7)), "y2": int(rng.integers(-9, 10)),
    }


def _draw_statistics_numbers(rng: np.random.Generator, language: str) -> dict:
    values = rng.integers(1, 21, size=int(rng.integers(5, 8)))
    return {
        "values": LIST_SEPARATORS[language].join(str(int(v)) for v in values),
        "die": int(rng.integers(1, 7)), "flips": pick(rng, [10, 20, 50, 100]),
        "red": int(rng.integers(1, 10)), "blue": int(rng.integers(1, 10)),
    }


def draw_numbers(rng: np.random.Generator, language: str) -> dict:
    """Draw one value for every placeholder used by any template of ``language``.

    Raises:
        ValueError: two topic helpers use the same placeholder name, so one would
            silently overwrite the other.
    """
    numbers: dict = {}
    for part in (
        _draw_fraction_numbers(rng),
        _draw_geometry_numbers(rng, language),
        _draw_algebra_numbers(rng),
        _draw_statistics_numbers(rng, language),
    ):
        if numbers.keys() & part.keys():
            raise ValueError(f"placeholders defined twice: {sorted(numbers.keys() & part.keys())}")
        numbers.update(part)
    return numbers


def compose_question(rng: np.random.Generator, language: str, template: str) -> str:
    """Fill ``template`` and wrap it in a random topic-neutral opener and closer."""
    question = template.format(**draw_numbers(rng, language))
    opener = pick(rng, OPENERS[language])
    closer = pick(rng, CLOSERS[language])
    starts_with_i = question.startswith(("I ", "I'"))
    if opener.endswith("but ") and not starts_with_i:
        question = question[:1].lower() + question[1:]
    return opener + question + closer


def generate_questions(rng: np.random.Generator, language: str, per_topic: int) -> list[tuple[str, str]]:
    """Return ``per_topic`` distinct (question, topic) pairs for each topic, shuffled.

    Raises:
        RuntimeError: the templates of a topic cannot produce ``per_topic`` distinct questions.
    """
    rows = []
    for topic, templates in TEMPLATES[language].items():
        seen: set[str] = set()
        for _ in range(per_topic * MAX_ATTEMPTS_PER_QUESTION):
            if len(seen) == per_topic:
                break
            question = compose_question(rng, language, pick(rng, templates))
            if question not in seen:
                seen.add(question)
                rows.append((question, topic))
        if len(seen) < per_topic:
            raise RuntimeError(f"only {len(seen)} distinct {language} questions for topic {topic!r}; add templates")
    return [rows[int(i)] for i in rng.permutation(len(rows))]
