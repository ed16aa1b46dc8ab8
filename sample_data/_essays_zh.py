"""Chinese essay prompts, sentence pools and text rules for ``essays_zh.csv``.

Every sentence here was written for EduTune in Simplified Chinese. Each entry is a
complete sentence ending in "。" (or "？"/"”"), and ``attach`` only puts a connective
such as "首先，" in front. Fields in braces are filled by ``pick_slots``.
"""

from __future__ import annotations

import re

import numpy as np

from _essay_compose import EssayLanguage, pick

PROMPTS = {"teacher": "《我的老师》", "phone": "《谈谈手机与学习》"}

# Inclusive length range per score, in characters including punctuation.
LENGTH_RANGES = {1: (80, 110), 2: (95, 140), 3: (120, 190), 4: (190, 280), 5: (300, 400)}

# Probability that a phrase listed in TYPOS is written wrongly, per score.
TYPO_RATES = {1: 0.7, 2: 0.45, 3: 0.1, 4: 0.0, 5: 0.0}

# Correct phrase -> a wrong character that students often write in its place.
TYPOS = {
    "作业": "做业", "已经": "以经", "视频": "视屏", "眼睛": "眼晴", "厉害": "利害",
    "好像": "好象", "耐心": "奈心", "告诉": "告述", "题目": "提目", "得很": "的很",
    "清楚": "清处", "时候": "时侯", "以后": "已后",
}
TYPO_PATTERN = re.compile("|".join(map(re.escape, TYPOS)))

CONNECTIVES = {
    5: [["首先，"], ["其次，", "另外，"], ["此外，", "更重要的是，"]],
    4: [["首先，"], ["其次，"], ["另外，", "还有，"], ["最后，"]],
    3: [[""], ["而且", "还有"], ["还有", ""]],
    2: [["", "还有", "因为", "而且"]],
    1: [["", "", "还有", "因为", "然后"]],
}

SURNAMES = ["王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "林", "郑"]
# Subject -> (topic taught in one lesson, teaching prop brought to that lesson).
SUBJECT_LESSONS = {
    "数学": ("勾股定理", "几根长短不同的木条"),
    "物理": ("浮力", "一盆清水和几块橡皮泥"),
    "生物": ("植物的光合作用", "一盆绿萝"),
    "语文": ("古诗的意境", "几幅山水画"),
    "英语": ("英语的时态", "一段英文动画片"),
    "历史": ("丝绸之路", "一张古代地图"),
}
APPS = ["词典软件", "学习软件", "网课平台", "背单词的软件"]

TEACHER_OFFTOPIC = [
    "我最喜欢吃妈妈做的红烧肉。", "昨天晚上我看了一部动画片，很好看。",
    "我家的小狗叫旺旺。", "下个星期我们要去春游，我很开心。",
]
PHONE_OFFTOPIC = [
    "我最喜欢的游戏是赛车游戏。", "昨天下雨了，我没有出去玩。",
    "我的同桌是一个很厉害的人。", "周末我和爸爸去钓鱼了。",
]

TEACHER = {
    "rich": {
        "hooks": [
            "在我成长的道路上，许多人给过我帮助，但对我影响最深的，是教我们{subject}的{surname}老师。",
            "如果把学校比作一片花园，那么{surname}老师就是一位默默耕耘的园丁。{ta}教我们{subject}已经三年了。",
            "时光飞逝，转眼间我已经上初中了。回首过去，最让我难忘的是我的{subject}老师——{surname}老师。",
        ],
        "theses": [
            "{ta}不仅学识渊博，而且为人正直，是我心中最敬佩的人。",
            "{ta}用自己的言行告诉我，什么是认真，什么是责任。",
        ],
        "reasons": [
            ("{surname}老师对待工作一丝不苟。", [
                "每次批改作业，{ta}都会用红笔写下详细的评语，连一个标点符号的错误也不放过。",
                "为了讲好一节课，{ta}常常备课到深夜，教案上写满了密密麻麻的笔记。",
            ]),
            ("{ta}讲课生动有趣，总能把枯燥的知识讲得通俗易懂。", [
                "记得学习{topic}的时候，{ta}带来了{prop}，让我们亲手操作，全班同学都听得津津有味。",
                "{ta}经常把课本上的知识和生活中的例子联系起来，让我们觉得学习{subject}其实并不难。",
            ]),
            ("{surname}老师关心每一个学生，从不偏心。", [
                "有一次我发高烧没能上学，{ta}放学后专门打电话询问我的情况，还把当天的笔记整理好交给我的同桌。",
                "班上有位同学基础比较薄弱，{ta}每天中午都抽出时间为这位同学耐心辅导，从来没有一句怨言。",
            ]),
            ("{ta}教会了我如何面对挫折。", [
                "期中考试我发挥失常，心情十分低落，{ta}却微笑着对我说：“失败并不可怕，可怕的是失去信心。”",
                "我参加演讲比赛落选后，{ta}陪我一起分析原因，鼓励我再试一次。第二年，我终于拿到了一等奖。",
            ]),
        ],
        "counters": [
            ("然而，{surname}老师也有严厉的一面。",
             "上课讲话或者不交作业，{ta}一定会严肃批评。不过，正是这份严格，让我们养成了良好的学习习惯。"),
            ("当然，刚开始我并不理解{ta}的严格要求。",
             "直到后来成绩一点点进步，我才明白了{ta}的良苦用心。"),
        ],
        "conclusions": [
            "总之，{surname}老师不仅传授给我们知识，更用自己的言行潜移默化地影响着我们。我会永远记住这位诲人不倦的好老师。",
            "总而言之，{surname}老师就像一盏明灯，照亮了我前进的道路。我一定会努力学习，不辜负{ta}的期望。",
        ],
    },
    "medium": {
        "openers": ["在学校里，有很多老师教过我。", "每个人都有自己喜欢的老师，我也不例外。"],
        "theses": [
            "我的{subject}老师姓{surname}，{ta}是一位认真负责的好老师。",
            "我最喜欢的老师是{surname}老师，{ta}教我们{subject}。",
        ],
        "reasons": [
            ("{ta}上课很认真，讲得很清楚。", [
                "比如讲{topic}的时候，{ta}讲了好几遍，直到我们都听懂为止。",
                "同学们有不懂的题目，{ta}都会耐心地解答。",
            ]),
            ("{ta}很关心我们。", [
                "有一次我生病了，{ta}打电话问我身体好些了没有。",
                "天冷的时候，{ta}总是提醒我们多穿衣服。",
            ]),
            ("{ta}批改作业很仔细。", [
                "我的作业本上经常有{ta}写的评语。",
                "作业里的每一个错误{ta}都会圈出来，告诉我们错在哪里。",
            ]),
            ("{ta}很幽默，上课经常讲笑话。", [
                "所以大家都很喜欢上{subject}课。",
                "有{ta}在，课堂上总是充满笑声。",
            ]),
        ],
        "counters": [
            "虽然{ta}有时候很严格，但是我知道{ta}是为了我们好。",
            "{ta}有时候也会批评我们，不过批评完还会耐心地讲道理。",
        ],
        "conclusions": [
            "总之，我很喜欢{surname}老师，我要好好学习，报答{ta}。",
            "这就是我的老师，我很敬佩{ta}。",
            "我觉得{surname}老师是世界上最好的老师。",
        ],
    },
    "simple": {
        "theses": ["我的老师是{surname}老师。", "我要写我的老师。", "{surname}老师是我的老师。"],
        "claims": [
            "{surname}老师很好。", "{ta}上课很认真。", "{ta}对我们很好。", "{ta}讲得很清楚。",
            "我很喜欢{surname}老师。", "{ta}有时候会生气。", "{ta}给我们布置很多作业。", "{ta}的字写得很好看。",
        ],
        "conclusions": ["这就是我的老师。", "我的老师很好。", "我以后要好好学习。"],
    },
}

PHONE_HOOKS = [
    "随着科技的飞速发展，智能手机已经走进了千家万户，也悄悄走进了中学生的书包。",
    "“手机是学习的好帮手，还是成绩的绊脚石？”这是同学们经常争论的话题。",
    "如今，无论在公交车上还是在餐桌旁，低头看手机的人随处可见，中学生也不例外。",
]
PHONE_OPENERS = ["现在，手机越来越普及了。", "手机已经成为我们生活中不可缺少的东西。"]

PHONE_HELPS = {
    "rich": {
        "hooks": PHONE_HOOKS,
        "theses": [
            "我认为，只要使用得当，手机完全可以成为学习的好帮手。",
            "在我看来，手机对学习的帮助远远大于它带来的危害，关键在于如何使用。",
        ],
        "reasons": [
            ("手机让查找资料变得方便快捷。", [
                "遇到不认识的生词或者不会做的题目，只要打开{app}，几秒钟就能找到详细的解释，大大提高了学习效率。",
                "写研究报告时，我们可以随时搜索相关的数据和图片，不必再跑到很远的图书馆去。",
            ]),
            ("手机拓宽了我们的视野。", [
                "通过网上的公开课和纪录片，我们足不出户就能聆听名师讲解，了解世界各地的风土人情。",
                "我曾经用手机观看了一部关于宇宙的纪录片，从此对天文学产生了浓厚的兴趣。",
            ]),
            ("手机方便了同学之间的交流与合作。", [
                "做小组作业时，我们可以在班级群里分享资料、讨论问题，即使放假在家也能共同完成任务。",
                "遇到难题时，我可以给同学发消息请教，第二天上课前就能把问题弄明白。",
            ]),
            ("手机能帮助我们合理安排时间。", [
                "我用手机上的日程提醒功能记录每天的学习计划，做事变得更加有条理。",
                "计时软件提醒我学习二十五分钟后休息五分钟，这样学习效率反而更高了。",
            ]),
        ],
        "counters": [
            ("当然，我们也不能忽视手机带来的负面影响。",
             "如果缺乏自制力，手机就会从学习工具变成娱乐工具。因此，我们必须学会合理安排使用时间。"),
            ("不可否认，有些同学因为沉迷手机而耽误了学习。",
             "然而，问题并不在手机本身，而在于使用的人是否懂得节制。"),
        ],
        "conclusions": [
            "总之，手机本身没有好坏之分，关键在于我们如何使用它。让我们做手机的主人，而不是它的奴隶。",
            "总而言之，只要我们合理使用、自觉管理，手机就能成为我们学习路上的得力助手。",
        ],
    },
    "medium": {
        "openers": PHONE_OPENERS,
        "theses": ["现在很多同学都有手机。我认为手机对学习有帮助。", "我觉得手机对学习的好处比坏处多。"],
        "reasons": [
            ("手机可以查资料。", ["比如遇到不会的题目，可以用手机查一查。", "不认识的字也可以用{app}查。"]),
            ("手机可以用来上网课。", ["放假的时候，我在家用手机上网课，学到了很多知识。", "网课可以反复看，没听懂的地方可以再听一遍。"]),
            ("用手机可以和同学讨论问题。", ["我们班有一个学习群，大家经常在里面讨论作业。", "有不会的题目，我就发消息问同学。"]),
            ("手机可以用来练习英语听力。", ["我每天早上用手机听十分钟英语，听力进步了很多。", "手机上有很多英语歌曲和故事，听起来很有意思。"]),
        ],
        "counters": ["当然，玩手机的时间太长也不好。", "虽然有的同学用手机玩游戏，但是我们可以管住自己。"],
        "conclusions": ["总之，我觉得手机对学习有帮助，但是不能玩太久。", "所以，我认为只要用得好，手机就是学习的好帮手。"],
    },
    "simple": {
        "theses": ["我觉得手机很好。", "手机对学习有用。", "我喜欢手机。"],
        "claims": [
            "手机可以查东西。", "手机可以看视频。", "我用手机写作业。", "手机很好玩。",
            "我妈妈给我买了一个新手机。", "手机可以听歌。", "我已经用了两年手机了。", "有时候我用手机看题目。",
        ],
        "conclusions": ["所以手机很好。", "这就是我的看法。", "我觉得手机很好。"],
    },
}

PHONE_HARMS = {
    "rich": {
        "hooks": PHONE_HOOKS,
        "theses": [
            "我认为，对于自制力还不够强的中学生来说，手机弊大于利。",
            "在我看来，手机给学习带来的干扰远远超过了它的便利。",
        ],
        "reasons": [
            ("手机容易让人沉迷，分散学习的注意力。", [
                "不少同学本来只想查一个单词，结果一刷短视频就是一个小时，作业却一个字也没写。",
                "上课时，只要口袋里的手机一振动，很多人的心思就飞到了游戏和聊天上。",
            ]),
            ("长时间使用手机会损害身体健康。", [
                "盯着屏幕太久，眼睛容易疲劳，近视的度数也越来越高。",
                "有些同学熬夜玩手机，第二天上课无精打采，听课效果大打折扣。",
            ]),
            ("过度依赖手机会削弱独立思考的能力。", [
                "有些同学一遇到难题就拍照搜答案，表面上作业完成得又快又好，实际上并没有真正掌握知识。",
                "习惯了随手搜索以后，我们越来越不愿意动脑筋，记忆力也变差了。",
            ]),
            ("手机会减少人与人之间面对面的交流。", [
                "课间休息时，本该一起聊天、运动的同学们却各自低头看手机，教室里安静得出奇。",
                "一家人坐在饭桌旁，却各自刷着手机，彼此之间的话越来越少。",
            ]),
        ],
        "counters": [
            ("当然，手机并非一无是处。",
             "在老师和家长的正确引导下，用手机查资料、听英语，也能起到事半功倍的效果。然而，这需要很强的自制力，而大多数中学生还做不到这一点。"),
            ("诚然，手机能让我们更快地获取信息。",
             "但是，信息来得太容易，我们反而不会静下心来认真阅读和思考。"),
        ],
        "conclusions": [
            "总而言之，手机给中学生带来的弊端大于好处。我们应当放下手机，把更多的时间留给书本和思考。",
            "总之，为了我们的学习和健康，中学生在校期间应当尽量少用手机。",
        ],
    },
    "medium": {
        "openers": PHONE_OPENERS,
        "theses": ["现在很多同学都有手机。我认为手机对学习有坏处。", "我觉得中学生不应该带手机上学。"],
        "reasons": [
            ("玩手机会影响学习。", ["有的同学一玩游戏就停不下来，作业都忘了写。", "我以前也经常看视频，成绩下降了不少。"]),
            ("玩手机对眼睛不好。", ["我们班很多同学都近视了，就是因为玩手机太多。", "每次玩完手机，我的眼睛都又干又累。"]),
            ("有了手机，有的同学就不自己思考了。", ["遇到难题就直接上网搜答案。", "这样做作业虽然快，但是考试的时候还是不会。"]),
            ("上课玩手机会被老师批评。", ["上个星期我们班就有同学的手机被老师没收了。", "老师说上课玩手机是对别人的不尊重。"]),
        ],
        "counters": ["虽然手机可以查资料，但是坏处更多。", "当然，手机也有一些好处，比如可以给家里打电话。"],
        "conclusions": ["总之，我觉得中学生应该少玩手机，多看书。", "所以，我认为手机对学习的坏处更多。"],
    },
    "simple": {
        "theses": ["我觉得手机不好。", "玩手机不好。", "手机对学习不好。"],
        "claims": [
            "玩手机对眼睛不好。", "玩手机会上瘾。", "玩游戏的时候不想写作业。", "手机很好玩但是不好。",
            "我妈妈不让我玩手机。", "我有时候玩手机玩到很晚。", "我已经不想玩手机了。", "看视频的时候时间过得很快。",
        ],
        "conclusions": ["所以不要玩手机。", "这就是我的看法。", "手机真的不好。"],
    },
}

POOLS = {
    "teacher": {"sides": {"single": TEACHER}, "offtopic": TEACHER_OFFTOPIC},
    "phone": {"sides": {"helps": PHONE_HELPS, "harms": PHONE_HARMS}, "offtopic": PHONE_OFFTOPIC},
}


def pick_slots(rng: np.random.Generator, prompt_key: str) -> dict[str, str]:
    """Choose the teacher, subject and lesson details, or the app, for one essay."""
    if prompt_key == "phone":
        return {"app": pick(rng, APPS)}
    subject = pick(rng, sorted(SUBJECT_LESSONS))
    topic, prop = SUBJECT_LESSONS[subject]
    return {
        "surname": pick(rng, SURNAMES),
        "ta": pick(rng, ["他", "她"]),
        "subject": subject,
        "topic": topic,
        "prop": prop,
    }


def attach(connective: str, claim: str) -> str:
    return connective + claim


def add_typos(rng: np.random.Generator, text: str, rate: float) -> str:
    """Replace each phrase listed in TYPOS by its wrong form with probability ``rate``."""

    def replace(match: re.Match) -> str:
        phrase = match.group(0)
        return TYPOS[phrase] if rng.random() < rate else phrase

    return TYPO_PATTERN.sub(replace, text)


def join_run_on(rng: np.random.Generator, sentences: list[str], comma_rate: float) -> str:
    """Join sentences, ending each one except the last with "，" instead of "。" at ``comma_rate``."""
    parts = []
    for sentence in sentences[:-1]:
        if sentence.endswith("。") and rng.random() < comma_rate:
            sentence = sentence[:-1] + "，"
        parts.append(sentence)
    parts.append(sentences[-1])
    return "".join(parts)


def render(rng: np.random.Generator, sentences: list[str], score: int) -> str:
    """Join the sentences and add the run-ons and typos that fit ``score``."""
    comma_rate = {1: 0.8, 2: 0.3}.get(score, 0.0)
    text = join_run_on(rng, sentences, comma_rate)
    return add_typos(rng, text, TYPO_RATES[score])


def count_characters(text: str) -> int:
    return len(text)


LANGUAGE = EssayLanguage(
    prompts=PROMPTS,
    pools=POOLS,
    connectives=CONNECTIVES,
    length_ranges=LENGTH_RANGES,
    pick_slots=pick_slots,
    attach=attach,
    render=render,
    measure=count_characters,
)
