"""Text content of the embedded bilingual corpus: sentences, QA items, normalisation, scoring.

Everything here was written for this project (no external data set). Sentences and
questions are produced from templates; English numbers are spelled as words
("twenty four"), Mandarin numbers as characters ("二十四").

Text forms:
  * written form: what the TTS engine reads, with punctuation ("What is three plus four?").
  * transcript: ``normalize_text(written, lang)``; English: lowercase words separated by
    single spaces, punctuation removed; Mandarin: characters only, no punctuation or spaces.
    This is what goes into Kaldi ``text`` and ``dialogues.jsonl``.

QA answers always END with their short answer ("three plus four is seven", "三加四等于七",
"a dog has four legs"), and ``answer_key`` lists the accepted short answers in transcript
form, spelled and with digits ("seven", "7"; "七", "7"; "four legs", "4 legs").
``answer_is_correct`` implements the scoring rule.
"""

import random
import re
from dataclasses import dataclass

LANGS = ("en", "zh")

# ---------------------------------------------------------------- numbers
_EN_UNITS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen "
    "fourteen fifteen sixteen seventeen eighteen nineteen"
).split()
_EN_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
_ZH_DIGITS = "零一二三四五六七八九"


def en_number(n: int) -> str:
    """Spell 0..100 in English words ("twenty four")."""
    if not 0 <= n <= 100:
        raise ValueError(f"en_number supports 0..100, got {n}")
    if n == 100:
        return "one hundred"
    if n < 20:
        return _EN_UNITS[n]
    tens, unit = divmod(n, 10)
    return _EN_TENS[tens - 2] + ("" if unit == 0 else " " + _EN_UNITS[unit])


def zh_number(n: int) -> str:
    """Write 0..100 in Chinese characters ("二十四")."""
    if not 0 <= n <= 100:
        raise ValueError(f"zh_number supports 0..100, got {n}")
    if n == 100:
        return "一百"
    if n < 10:
        return _ZH_DIGITS[n]
    tens, unit = divmod(n, 10)
    return ("" if tens == 1 else _ZH_DIGITS[tens]) + "十" + ("" if unit == 0 else _ZH_DIGITS[unit])


def zh_count(n: int) -> str:
    """Chinese numeral before a measure word: 两 instead of 二 for two."""
    return "两" if n == 2 else zh_number(n)


def number(n: int, lang: str) -> str:
    return en_number(n) if lang == "en" else zh_number(n)


# Tokens that may be part of a longer number; a key must not be glued to one of them.
_NUMERAL_TOKENS = {
    "en": set(_EN_UNITS) | set(_EN_TENS) | {"hundred"},
    "zh": set(_ZH_DIGITS) | {"十", "百", "两"},
}


# ---------------------------------------------------------------- normalisation / scoring
def normalize_text(text: str, lang: str) -> str:
    """Transcript form: lowercase, punctuation removed; words joined by " " (en) or "" (zh)."""
    words = re.sub(r"[^\w]+", " ", text.lower()).split()
    return ("" if lang == "zh" else " ").join(words)


def _tokens(text: str, lang: str) -> list:
    normalized = normalize_text(text, lang)
    return list(normalized) if lang == "zh" else normalized.split()


def answer_is_correct(hypothesis: str, keys, lang: str) -> bool:
    """Scoring rule: the normalised hypothesis ends with one of the keys (whole tokens:
    words for en, characters for zh), and the token before the key is not a numeral
    (so "twenty four" does not match "four", "十七" does not match "七")."""
    hyp = _tokens(hypothesis, lang)
    for key in keys:
        key_tokens = _tokens(key, lang)
        n = len(key_tokens)
        if n == 0 or hyp[-n:] != key_tokens:
            continue
        if len(hyp) == n:
            return True
        before = hyp[-n - 1]
        if not before.isdigit() and before not in _NUMERAL_TOKENS[lang]:
            return True
    return False


# ---------------------------------------------------------------- QA items
@dataclass(frozen=True)
class QAItem:
    """One spoken question answering item (written forms; keys in transcript form)."""

    lang: str
    category: str  # arithmetic | counting | comparison | fact
    content: str  # the underlying problem, shared by its phrasings ("3+4", "after 7", ...)
    question: str
    answer: str
    keys: tuple


def _numeric_keys(n: int, lang: str, unit: str = "") -> tuple:
    """Short answer keys of a number (spelled, digits), optionally followed by a unit."""
    spelled = zh_count(n) if lang == "zh" and unit else number(n, lang)
    return tuple(normalize_text(f"{value} {unit}", lang) for value in (spelled, n))


def _arithmetic(lang: str) -> list:
    en_ops = {"+": "plus", "-": "minus", "*": "times", "/": "divided by"}
    zh_ops = {"+": "加", "-": "减", "*": "乘", "/": "除以"}
    problems = [(a, "+", b, a + b) for a in range(21) for b in range(21)]
    problems += [(a, "-", b, a - b) for a in range(21) for b in range(a + 1)]
    problems += [(a, "*", b, a * b) for a in range(11) for b in range(11)]
    problems += [(b * c, "/", b, c) for b in range(1, 11) for c in range(11)]
    items = []
    for a, op, b, c in problems:
        if lang == "en":
            expr = f"{en_number(a)} {en_ops[op]} {en_number(b)}"
            questions = (f"What is {expr}?", f"How much is {expr}?")
            answer = f"{expr} is {en_number(c)}."
        else:
            expr = f"{zh_number(a)}{zh_ops[op]}{zh_number(b)}"
            questions = (f"{expr}等于几？", f"{expr}是多少？")
            answer = f"{expr}等于{zh_number(c)}。"
        items += [QAItem(lang, "arithmetic", f"{a}{op}{b}", q, answer, _numeric_keys(c, lang)) for q in questions]
    return items


_REPEAT_WORDS = {
    "en": ("cat", "dog", "apple", "tree", "book", "sun", "fish", "car"),
    "zh": ("猫", "狗", "苹果", "书", "花", "树", "鱼", "车"),
}


def _counting(lang: str) -> list:
    items = []
    num = lambda n: number(n, lang)  # noqa: E731
    for start in range(1, 16):
        for length in range(3, 6):
            seq = list(range(start, start + length))
            if lang == "en":
                questions = (f"Count from {num(seq[0])} to {num(seq[-1])}.",
                             f"Please count from {num(seq[0])} to {num(seq[-1])}.")
                answer = ", ".join(num(i) for i in seq) + "."
            else:
                questions = (f"从{num(seq[0])}数到{num(seq[-1])}。", f"请从{num(seq[0])}数到{num(seq[-1])}。")
                answer = "，".join(num(i) for i in seq) + "。"
            keys = (normalize_text(answer, lang), normalize_text(" ".join(map(str, seq)), lang))
            items += [QAItem(lang, "counting", f"count {start}-{seq[-1]}", q, answer, keys) for q in questions]
    for n in range(101):
        for step, en_word, zh_word in ((1, "after", "后面"), (-1, "before", "前面")):
            m = n + step
            if not 0 <= m <= 100:
                continue
            if lang == "en":
                questions = (f"What number comes {en_word} {num(n)}?", f"Which number is {en_word} {num(n)}?")
                answer = f"The number {en_word} {num(n)} is {num(m)}."
            else:
                questions = (f"{num(n)}{zh_word}是几？", f"{num(n)}{zh_word}的数是几？")
                answer = f"{num(n)}{zh_word}是{num(m)}。"
            content = f"{en_word} {n}"
            items += [QAItem(lang, "counting", content, q, answer, _numeric_keys(m, lang)) for q in questions]
    for word in _REPEAT_WORDS[lang]:
        for times in range(2, 7):
            if lang == "en":
                heard = ", ".join([word] * times)
                questions = (f"Listen: {heard}. How many times did I say {word}?",
                             f"{heard}. How many times did you hear the word {word}?")
                answer = f"You said it {num(times)} times."
                keys = _numeric_keys(times, lang, "times")
            else:
                heard = "，".join([word] * times)
                questions = (f"听好：{heard}。我说了几次{word}？", f"{heard}。你听到了几次{word}？")
                answer = f"你一共听到了{zh_count(times)}次。"
                keys = _numeric_keys(times, lang, "次")
            items += [QAItem(lang, "counting", f"say {word} {times}", q, answer, keys) for q in questions]
    return items


def _comparison(lang: str) -> list:
    items = []
    for a in range(21):
        for b in range(21):
            if a == b:
                continue
            for bigger in (True, False):
                c = max(a, b) if bigger else min(a, b)
                if lang == "en":
                    word = "bigger" if bigger else "smaller"
                    pair = f"{en_number(a)} or {en_number(b)}"
                    questions = (f"Which is {word}, {pair}?", f"Which number is {word}, {pair}?")
                    answer = f"The {word} of {en_number(a)} and {en_number(b)} is {en_number(c)}."
                else:
                    word = "大" if bigger else "小"
                    questions = (f"{zh_number(a)}和{zh_number(b)}哪个{word}？",
                                 f"{zh_number(a)}和{zh_number(b)}比，哪个比较{word}？")
                    answer = f"{zh_number(a)}和{zh_number(b)}中比较{word}的是{zh_number(c)}。"
                content = f"{'max' if bigger else 'min'} {a} {b}"
                items += [QAItem(lang, "comparison", content, q, answer, _numeric_keys(c, lang)) for q in questions]
    return items


# Facts: (English, Mandarin) pairs written for this corpus.
_COLOURS = (  # thing, colour
    (("the sky", "blue"), ("天空", "蓝色")),
    (("grass", "green"), ("草", "绿色")),
    (("snow", "white"), ("雪", "白色")),
    (("milk", "white"), ("牛奶", "白色")),
    (("coal", "black"), ("煤", "黑色")),
    (("a ripe banana", "yellow"), ("熟香蕉", "黄色")),
    (("a lemon", "yellow"), ("柠檬", "黄色")),
    (("a ripe strawberry", "red"), ("熟草莓", "红色")),
    (("a carrot", "orange"), ("胡萝卜", "橙色")),
    (("a ripe tomato", "red"), ("熟西红柿", "红色")),
    (("a cucumber", "green"), ("黄瓜", "绿色")),
)
_DAYS = (
    ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"),
    ("星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期天"),
)
_MONTHS = (
    ("january", "february", "march", "april", "may", "june", "july", "august",
     "september", "october", "november", "december"),
    tuple(f"{zh_number(m)}月" for m in range(1, 13)),
)
_CAPITALS = (
    (("france", "paris"), ("法国", "巴黎")),
    (("germany", "berlin"), ("德国", "柏林")),
    (("italy", "rome"), ("意大利", "罗马")),
    (("spain", "madrid"), ("西班牙", "马德里")),
    (("japan", "tokyo"), ("日本", "东京")),
    (("china", "beijing"), ("中国", "北京")),
    (("russia", "moscow"), ("俄罗斯", "莫斯科")),
    (("egypt", "cairo"), ("埃及", "开罗")),
    (("the united kingdom", "london"), ("英国", "伦敦")),
    (("greece", "athens"), ("希腊", "雅典")),
    (("portugal", "lisbon"), ("葡萄牙", "里斯本")),
    (("ireland", "dublin"), ("爱尔兰", "都柏林")),
    (("norway", "oslo"), ("挪威", "奥斯陆")),
    (("sweden", "stockholm"), ("瑞典", "斯德哥尔摩")),
    (("austria", "vienna"), ("奥地利", "维也纳")),
    (("poland", "warsaw"), ("波兰", "华沙")),
    (("canada", "ottawa"), ("加拿大", "渥太华")),
    (("australia", "canberra"), ("澳大利亚", "堪培拉")),
    (("south korea", "seoul"), ("韩国", "首尔")),
    (("thailand", "bangkok"), ("泰国", "曼谷")),
    (("kenya", "nairobi"), ("肯尼亚", "内罗毕")),
    (("peru", "lima"), ("秘鲁", "利马")),
    (("cuba", "havana"), ("古巴", "哈瓦那")),
    (("vietnam", "hanoi"), ("越南", "河内")),
)
_OPPOSITES = {  # each pair is asked in both directions
    "en": (("hot", "cold"), ("up", "down"), ("left", "right"), ("day", "night"), ("fast", "slow"),
           ("happy", "sad"), ("wet", "dry"), ("full", "empty"), ("early", "late"),
           ("black", "white"), ("north", "south"), ("east", "west"), ("push", "pull"),
           ("buy", "sell"), ("inside", "outside"), ("always", "never"), ("win", "lose")),
    "zh": (("热", "冷"), ("大", "小"), ("上", "下"), ("左", "右"), ("快", "慢"), ("早", "晚"),
           ("黑", "白"), ("南", "北"), ("东", "西"), ("推", "拉"), ("买", "卖"), ("多", "少"),
           ("前", "后"), ("胖", "瘦"), ("开", "关"), ("新", "旧"), ("远", "近"), ("哭", "笑")),
}
_HOW_MANY = (  # English question end, English answer, Mandarin question, Mandarin answer, number
    ("legs does a dog have", "a dog has {} legs", "狗有几条腿", "狗有{}条腿", 4),
    ("legs does a cat have", "a cat has {} legs", "猫有几条腿", "猫有{}条腿", 4),
    ("legs does a horse have", "a horse has {} legs", "马有几条腿", "马有{}条腿", 4),
    ("legs does a spider have", "a spider has {} legs", "蜘蛛有几条腿", "蜘蛛有{}条腿", 8),
    ("legs does a bird have", "a bird has {} legs", "鸟有几条腿", "鸟有{}条腿", 2),
    ("legs does a chicken have", "a chicken has {} legs", "鸡有几条腿", "鸡有{}条腿", 2),
    ("sides does a triangle have", "a triangle has {} sides", "三角形有几条边", "三角形有{}条边", 3),
    ("sides does a square have", "a square has {} sides", "正方形有几条边", "正方形有{}条边", 4),
    ("wheels does a bicycle have", "a bicycle has {} wheels", "自行车有几个轮子", "自行车有{}个轮子", 2),
    ("wheels does a car have", "a car has {} wheels", "汽车有几个轮子", "汽车有{}个轮子", 4),
    ("days does a week have", "a week has {} days", "一个星期有几天", "一个星期有{}天", 7),
    ("months does a year have", "a year has {} months", "一年有几个月", "一年有{}个月", 12),
    ("hours does a day have", "a day has {} hours", "一天有几个小时", "一天有{}个小时", 24),
    ("minutes does an hour have", "an hour has {} minutes", "一个小时有多少分钟", "一个小时有{}分钟", 60),
    ("seconds does a minute have", "a minute has {} seconds", "一分钟有多少秒", "一分钟有{}秒", 60),
    ("fingers does one hand have", "one hand has {} fingers", "一只手有几根手指", "一只手有{}根手指", 5),
)


def _fact(lang: str, questions, answer: str, keys) -> list:
    keys = tuple(normalize_text(k, lang) for k in keys)
    return [QAItem(lang, "fact", answer, q, answer, keys) for q in questions]


def _facts(lang: str) -> list:
    en = lang == "en"
    side = 0 if en else 1
    items = []
    for pair in _COLOURS:
        thing, colour = pair[side]
        if en:
            qs = (f"What colour is {thing}?", f"Tell me the colour of {thing}.")
            items += _fact(lang, qs, f"{thing.capitalize()} is {colour}.", [colour])
        else:
            qs = (f"{thing}是什么颜色的？", f"{thing}的颜色是什么？")
            items += _fact(lang, qs, f"{thing}的颜色是{colour}。", [colour])
    for names, unit, zh_unit in ((_DAYS, "day", "星期几"), (_MONTHS, "month", "几月")):
        seq = names[side]
        for i, name in enumerate(seq):
            for step, en_word, zh_word in ((1, "after", "后面"), (-1, "before", "前面")):
                other = seq[(i + step) % len(seq)]
                keys = [other, "星期日"] if other == "星期天" else [other]
                if en:
                    qs = (f"What {unit} comes {en_word} {name}?", f"Which {unit} is {en_word} {name}?")
                    items += _fact(lang, qs, f"The {unit} {en_word} {name} is {other}.", keys)
                else:
                    qs = (f"{name}{zh_word}是{zh_unit}？", f"{name}的{zh_word}是{zh_unit}？")
                    items += _fact(lang, qs, f"{name}{zh_word}是{other}。", keys)
    for pair in _CAPITALS:
        country, city = pair[side]
        if en:
            qs = (f"What is the capital of {country}?", f"Which city is the capital of {country}?")
            items += _fact(lang, qs, f"The capital of {country} is {city}.", [city])
        else:
            qs = (f"{country}的首都是哪里？", f"{country}的首都是哪个城市？")
            items += _fact(lang, qs, f"{country}的首都是{city}。", [city])
    for a, b in _OPPOSITES[lang]:
        for word, opposite in ((a, b), (b, a)):
            if en:
                qs = (f"What is the opposite of {word}?", f"What is the opposite of the word {word}?")
                items += _fact(lang, qs, f"The opposite of {word} is {opposite}.", [opposite])
            else:
                qs = (f"{word}的反义词是什么？", f"和{word}意思相反的字是什么？")
                items += _fact(lang, qs, f"{word}的反义词是{opposite}。", [opposite])
    for en_q, en_a, zh_q, zh_a, n in _HOW_MANY:
        unit = (en_a if en else zh_a).split("{}")[1].strip()  # e.g. "legs", "条腿"
        if en:
            qs = (f"How many {en_q}?", f"Quick question: how many {en_q}?")
            answer = en_a.format(en_number(n)).capitalize() + "."
        else:
            qs = (f"{zh_q}？", f"你知道{zh_q}吗？")
            answer = zh_a.format(zh_count(n)) + "。"
        items += _fact(lang, qs, answer, _numeric_keys(n, lang, unit))
    return items


QA_CATEGORIES = ("arithmetic", "counting", "comparison", "fact")
_QA_BUILDERS = {"arithmetic": _arithmetic, "counting": _counting, "comparison": _comparison, "fact": _facts}


def qa_pool(lang: str, category: str) -> list:
    """All QA items of one language and category, in a fixed order, question texts unique."""
    items = _QA_BUILDERS[category](lang)
    seen = set()
    for item in items:
        text = normalize_text(item.question, lang)
        if text in seen:
            raise AssertionError(f"duplicate {lang} {category} question: {item.question!r}")
        seen.add(text)
    return items


# ---------------------------------------------------------------- plain sentences (ASR/TTS)
_EN_SLOTS = {
    "name": "anna tom lucy david maria peter sarah john emma mike linda paul".split(),
    "animal": "cat dog bird horse rabbit duck cow sheep fish mouse".split(),
    "colour": "red blue green yellow white black brown orange pink grey".split(),
    "object": "book cup box bag key phone lamp ball pencil".split(),
    "furniture": "table chair shelf bed desk floor".split(),
    "place": "kitchen garden park school market library station office river beach".split(),
    "food": "bread rice soup apples noodles eggs cheese cake".split(),
    "drink": "tea coffee milk water juice".split(),
    "day": list(_DAYS[0]),
    "weather": "sunny cloudy rainy windy cold warm".split(),
    "relative": "mother father sister brother friend teacher".split(),
    "topic": ["animals", "music", "history", "science", "the sea", "space", "trains"],
    "city": "london paris berlin tokyo beijing rome madrid".split(),
    "period": "morning afternoon evening".split(),
    "opening": "window door box bag book".split(),
    "event": "party meeting class game".split(),
    "clothing": "hat coat shirt dress scarf".split(),
}
_EN_PLURAL = {"sheep": "sheep", "fish": "fish", "mouse": "mice", "box": "boxes", "bus": "buses"}
_EN_TEMPLATES = (
    "{name} walked to the {place} on {day}.",
    "The {colour} {animal} is sleeping in the {place}.",
    "Please put the {object} on the {furniture}.",
    "I would like {n} {cups} of {drink}, please.",
    "{name} has {n} {animals}.",
    "It is {weather} today, so we will go to the {place}.",
    "There are {n} {objects} on the {furniture}.",
    "{name} and {name2} are eating {food} in the {place}.",
    "My {relative} likes to read books about {topic}.",
    "The train to {city} leaves at {hour} in the {period}.",
    "Can you open the {opening} for {name}?",
    "We need {n} more {objects} for the {event}.",
    "{name} bought a {colour} {clothing} at the market on {day}.",
    "The {animal} jumped over the {colour} {object}.",
    "On {day} my {relative} will visit the {place} with {name}.",
)
_ZH_SLOTS = {
    "name": "小明 小红 小李 王老师 张医生 李阿姨 小刚 小丽 爷爷 奶奶".split(),
    "animal": "猫:只 狗:只 鸟:只 马:匹 兔子:只 鸭子:只 牛:头 羊:只 鱼:条 老鼠:只".split(),
    "colour": "红色 蓝色 绿色 黄色 白色 黑色 紫色 粉色".split(),
    "object": "书:本 杯子:个 铅笔:支 球:个 苹果:个 花:朵 钥匙:把 手机:部".split(),
    "place": "公园 学校 商店 图书馆 车站 医院 厨房 花园 河边 海边".split(),
    "food": "米饭 面条 饺子 苹果 面包 鸡蛋 包子".split(),
    "drink": "茶 咖啡 牛奶 水 果汁".split(),
    "day": list(_DAYS[1]),
    "weather": "很热 很冷 下雨 刮风 是晴天 是阴天".split(),
    "relative": "妈妈 爸爸 姐姐 哥哥 弟弟 妹妹 朋友 老师".split(),
    "topic": "动物 音乐 历史 科学 大海 太空 火车".split(),
    "city": "北京 上海 广州 南京 西安 杭州 成都".split(),
    "period": "早上 上午 下午 晚上".split(),
    "opening": "窗户 门 箱子 盒子 书包".split(),
    "event": "晚会 会议 比赛 课".split(),
    "clothing": "衣服 外套 衬衫 毛衣".split(),
}
_ZH_TEMPLATES = (
    "{name}{day}去{place}。",
    "{colour}的{animal}在{place}睡觉。",
    "请把{object}放在桌子上。",
    "我想要{count}杯{drink}。",
    "{name}家里有{count}{animal_cls}{animal}。",
    "今天{weather}，我们去{place}吧。",
    "桌子上有{count}{object_cls}{object}。",
    "{name}和{name2}在{place}吃{food}。",
    "我的{relative}喜欢看关于{topic}的书。",
    "去{city}的火车{period}{hour}点出发。",
    "你能帮{name}打开{opening}吗？",
    "我们的{event}需要{count}{object_cls}{object}。",
    "{name}{day}在商店买了一件{colour}的{clothing}。",
    "{animal}跳过了{colour}的{object}。",
    "{day}我的{relative}和{name}一起去{place}。",
)


def _en_plural(word: str, n: int) -> str:
    return word if n == 1 else _EN_PLURAL.get(word, word + "s")


def _fill_en(template: str, rng: random.Random) -> str:
    slots = {key: rng.choice(values) for key, values in _EN_SLOTS.items()}
    slots["name2"] = rng.choice([n for n in _EN_SLOTS["name"] if n != slots["name"]])
    n = rng.randint(1, 12)
    slots.update(n=en_number(n), cups=_en_plural("cup", n), animals=_en_plural(slots["animal"], n),
                 objects=_en_plural(slots["object"], n), hour=en_number(rng.randint(1, 12)))
    text = template.format(**slots)
    return text[0].upper() + text[1:]


def _fill_zh(template: str, rng: random.Random) -> str:
    slots = {key: rng.choice(values) for key, values in _ZH_SLOTS.items()}
    slots["name2"] = rng.choice([n for n in _ZH_SLOTS["name"] if n != slots["name"]])
    slots["animal"], slots["animal_cls"] = slots["animal"].split(":")
    slots["object"], slots["object_cls"] = slots["object"].split(":")
    slots.update(count=zh_count(rng.randint(1, 12)), hour=zh_count(rng.randint(1, 12)))
    return template.format(**slots)


def sample_sentences(lang: str, count: int, rng: random.Random) -> list:
    """``count`` written sentences with distinct transcripts, from randomly chosen templates."""
    templates, fill = (_EN_TEMPLATES, _fill_en) if lang == "en" else (_ZH_TEMPLATES, _fill_zh)
    sentences, seen = [], set()
    for _ in range(count * 50):
        sentence = fill(rng.choice(templates), rng)
        key = normalize_text(sentence, lang)
        if key not in seen:
            seen.add(key)
            sentences.append(sentence)
            if len(sentences) == count:
                return sentences
    raise RuntimeError(f"could only make {len(sentences)} distinct {lang} sentences, {count} requested")
