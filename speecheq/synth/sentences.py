"""The built-in sentences of the synthetic corpus: short everyday statements, one list per language.

Words are separated by spaces so that phrases can be cut between words; Mandarin transcripts
join them without spaces.
"""

from __future__ import annotations

ENGLISH: tuple[str, ...] = (
    "I will meet you at the station tomorrow.",
    "The bus leaves in ten minutes.",
    "Please close the window before you go.",
    "We had dinner with our neighbours last night.",
    "My sister bought a new bicycle.",
    "The shop on the corner is closed today.",
    "He left his keys on the kitchen table.",
    "It has been raining all morning.",
    "They moved to a small house near the river.",
    "The meeting starts after lunch.",
    "I forgot to water the plants again.",
    "Our train was late this morning.",
    "She reads the newspaper every day.",
    "The children are playing in the garden.",
    "You can leave your coat by the door.",
    "We need more milk and some bread.",
    "The doctor will see you at noon.",
    "My phone battery is almost empty.",
    "He walks the dog before breakfast.",
    "The letter arrived on Friday.",
)

MANDARIN: tuple[str, ...] = (
    "我 明天 早上 在 车站 等 你。",
    "公共汽车 十 分钟 以后 出发。",
    "出门 之前 请 把 窗户 关上。",
    "我们 昨天 晚上 和 邻居 一起 吃饭。",
    "我 妹妹 买 了 一辆 新 自行车。",
    "街角 的 那家 商店 今天 不 开门。",
    "他 把 钥匙 忘 在 厨房 的 桌子 上 了。",
    "今天 早上 一直 在 下雨。",
    "他们 搬到 了 河边 的 一座 小 房子。",
    "会议 在 午饭 以后 开始。",
    "我 又 忘 了 给 花 浇水。",
    "我们 的 火车 今天 早上 晚点 了。",
    "她 每天 都 看 报纸。",
    "孩子们 在 花园 里 玩。",
    "你 可以 把 外套 放在 门口。",
    "我们 需要 买 牛奶 和 面包。",
    "医生 中午 会 见 你。",
    "我 的 手机 快 没电 了。",
    "他 每天 早饭 以前 去 遛狗。",
    "那封 信 星期五 到 了。",
)
