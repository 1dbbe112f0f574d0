"""Hand-made form pages for the RE² segmentation tests: OCR words, and gold documents grouping them."""
from graphmie.data.funsd import LINK_LABEL
from graphmie.document import Box, Document, Entity, Page, Relation, Token
from layout.ocr import OcrWord


def W(text, x0, y0, x1, y1, line):
    return OcrWord(text, Box(x0, y0, x1, y1), 0.9, line)


def two_field_page():
    """ "Name: John Smith" on one OCR line; an answer wrapped over two lines below "Address:"."""
    return [W("Name:", 0, 0, 40, 10, 0), W("John", 46, 0, 70, 10, 0), W("Smith", 74, 0, 100, 10, 0),
            W("Address:", 0, 30, 60, 40, 1), W("12", 70, 30, 85, 40, 1), W("High", 89, 30, 115, 40, 1),
            W("Street", 70, 43, 110, 53, 2)]


def gold_of(words, groups, labels, links=()):
    tokens = [Token(text=w.text, box=w.box, page=0) for w in words]
    ents = []
    for k, (g, lab) in enumerate(zip(groups, labels)):
        box = words[g[0]].box
        for i in g[1:]:
            box = box.union(words[i].box)
        ents.append(Entity(id=f"e{k}", text=" ".join(words[i].text for i in g), label=lab, tokens=list(g), box=box))
    rels = [Relation(id=f"r{k}", head=f"e{q}", tail=f"e{a}", label=LINK_LABEL) for k, (q, a) in enumerate(links)]
    return Document(id="t", kind="form", source="t.json", pages=[Page(index=0, width=200, height=100)],
                    tokens=tokens, entities=ents, relations=rels, meta={"gold": True})
