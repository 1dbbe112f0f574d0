"""Grounded multimodal NER: a MiniLM tagger over ``tweet [SEP] image caption`` with a groundability head.

After RiVEG (Li et al., "LLMs as Bridges: Reformulating Grounded Multimodal Named Entity
Recognition", ACL 2024 Findings) and H-Index (Yu et al., "Grounded Multimodal Named Entity
Recognition on Social Media", ACL 2023).

Follows them: the image enters the text encoder as its description (RiVEG's image-to-text
bridge: a BLIP-2 caption appended as the second segment); entities are BIO spans with their type;
each entity gets a groundability decision (H-Index's "is it in the image?") and a groundable one
is grounded by choosing one of the image's candidate regions (:mod:`graphmie.grounding`, the
H-Index-style head of :mod:`graphmie.methods.hindex`); the metrics are H-Index's MNER / EEG /
GMNER F1.

Differs: the encoder is the installed 22M-parameter uncased all-MiniLM-L6-v2 (LoRA adapters of
rank 64 on every linear layer, :mod:`graphmie.nn.lora`, instead of fine-tuning BERT-base / BART),
with a learned word-shape embedding putting back the casing the uncased tokenizer drops;
decoding is constrained BIO Viterbi (a CRF's decoding with hard transitions, no learned
transition scores); groundability is an MLP over the tagger's span states (:mod:`.model`), not
a cross-modal score (the Twitter-GMNER images are not obtainable, so on the benchmark regions are
judged through groundability, see ``docs/entity.md``); no LLM re-typing step (RiVEG's entity
expansion) and no visual region features in the shipped grounding head.

Training (:meth:`MNER.train`) runs through :class:`~graphmie.engine.trainer.Trainer`: AdamW over
two groups (the encoder's adapters at ``lr``, the shape embedding / classifier / groundability
head at ``head_lr``), gradient clipping 1.0, the epoch kept with the best ``mner_f1 + 0.25
ground_f1`` on ``val_tweets`` carved from the training split (checkpointed each time a better
one comes). The learning-rate schedule is the Trainer's ``linear`` one (6 % warm-up to the full
rate, then linear decay to 0 over the remaining steps); the shipped weights were trained with
the earlier loop's ``min(1, (s+1)/(0.06 n)) * max(0, (n-s)/n)`` (the decay runs over all ``n``
steps from the first, so the peak rate is 0.94 x ``lr``), so a retraining is not bit-identical
to the shipped run; all else (seeding, batch order, losses, clipping, selection) is.
"""
from __future__ import annotations

import datetime
import random
from pathlib import Path

import torch

from ...config import REPO_ROOT, Mapping
from ...data.gmner import bio_to_spans
from ...document import Document, Entity, Provenance, Token
from ...engine.checkpoint import Checkpoint, load_state_into, save_checkpoint
from ...engine.method import Method, Result
from ...engine.trainer import Trainer, command_line, set_threads, write_run_record
from ...errors import GraphmieError
from ...data.knowledge import knowledge_tags
from .data import context_of, encode_tweets, evaluate_items, length_batches, lower_states, make_batch, \
    subword_span, targets, tokenize
from .model import MnerTagger, TaggerEnsemble, encode_example, pad_batch

MODEL_NAME = "graphmie.entity.mner"
CAPTIONS = ("blip2", "owl", "none")
#: ``auto``: the dataset's LLM knowledge (``aux_riveg`` / ``aux_pgim``) when it has one; ``none``: never
KNOWLEDGE = ("auto", "none")
TYPES = ["PER", "ORG", "LOC", "OTHER"]


def build_model(cfg: dict):
    """(tokenizer, tagger) for a resolved config; the backbone is the installed MiniLM."""
    from ...encoders.text import load_backbone

    tok, bert = load_backbone()
    m = cfg["model"]
    return tok, MnerTagger(bert, cfg["types"]["types"], n_frozen=m["n_frozen"], dropout=m["dropout"],
                           lora_rank=m["lora_rank"], lora_alpha=m["lora_alpha"],
                           knowledge_features=m["knowledge_features"])


def _check_caption(caption: str) -> str:
    if caption not in CAPTIONS:
        raise GraphmieError("E022", None, name="caption", value=caption, choices=", ".join(CAPTIONS))
    return caption


def _check_knowledge(knowledge: str) -> str:
    if knowledge not in KNOWLEDGE:
        raise GraphmieError("E022", None, name="knowledge", value=knowledge, choices=", ".join(KNOWLEDGE))
    return knowledge


class MNER(Method):
    name = "mner"
    task = "entity"
    model_name = MODEL_NAME
    schema = {
        "data": {"root": "../shared/data/gmner", "train_split": "train", "eval_split": "dev", "val_tweets": 500,
                 "limit": 0, "caption": "blip2", "knowledge": "none", "knowledge_dropout": 0.0},
        "model": {"n_frozen": 6, "lora_rank": 64, "lora_alpha": 64.0, "max_length": 96, "dropout": 0.1,
                  "knowledge_features": False, "members": []},
        "types": {"types": TYPES, "coarse": Mapping({t: t for t in TYPES})},
        "training": {"epochs": 8, "batch_size": 16, "lr": 3e-4, "head_lr": 1e-3, "ground_weight": 0.5, "seed": 13,
                     "threads": 1, "device": "cpu"},
        "grounding": {"threshold": 0.5, "max_regions": 20},
    }
    eval_options = {"threads": 1, "limit": 0, "caption": "", "knowledge": "", "llm": "", "threshold": None}
    #: what every member of an ensemble (``model.members``) shares with the checkpoint that lists it
    member_keys = (("model", "max_length"), ("model", "knowledge_features"), ("model", "n_frozen"),
                   ("model", "lora_rank"), ("data", "knowledge"), ("data", "caption"), ("types", "types"))

    def __init__(self, ckpt: Checkpoint, config: dict, tokenizer, model: MnerTagger):
        super().__init__(ckpt)
        self.config, self.tokenizer, self.model = config, tokenizer, model
        self._generators: dict = {}            # knowledge generators by spec, made on first use
        self.members: list[Checkpoint] = []    # the other taggers averaged with this one (``model.members``)

    @classmethod
    def from_checkpoint(cls, ckpt: Checkpoint) -> "MNER":
        from ...nn.lora import merge_lora

        cfg = cls.resolve_config(ckpt.config, ckpt.path)
        tok, model = build_model(cfg)
        if ckpt.meta.get("labels", model.labels) != model.labels:
            raise GraphmieError("E025", ckpt.path, detail=f"labels {ckpt.meta['labels']} in the sidecar, "
                                f"{model.labels} in the config")
        load_state_into(model, ckpt, trainable_only=True)     # the frozen backbone is the installed MiniLM
        merge_lora(model)                                     # inference: fold the adapters into the weights
        members = [cls.load_member(spec, ckpt, cfg) for spec in cfg["model"]["members"]]
        if members:
            model = TaggerEnsemble([model] + [m.model for m in members])
        model.eval()
        method = cls(ckpt, cfg, tok, model)
        method.members = [m.ckpt for m in members]
        return method

    # --- prediction ---------------------------------------------------------------------
    def reads_knowledge(self) -> bool:
        """Whether this tagger was trained to read LLM knowledge after the tweet."""
        return self.config["data"]["knowledge"] != "none"

    @torch.no_grad()
    def tag(self, doc: Document) -> dict[str, float]:
        """Tag ``doc.text`` (``doc.caption`` and, for a tagger trained with it, ``doc.knowledge`` as
        context): appends Entities with provenance; returns each new entity's groundability probability."""
        model = self.model
        words, spans = tokenize(doc.text)
        if not words:
            return {}
        knowledge = doc.knowledge if self.reads_knowledge() else None
        item = encode_example(self.tokenizer, words, context_of(doc.caption or "", knowledge),
                              self.config["model"]["max_length"],
                              know_tags=knowledge_tags(words, knowledge) if knowledge and model.know_emb is not None
                              else None)
        evidence = ("text",) + (("caption",) if doc.caption else ()) + (
            (f"knowledge:{doc.meta.get('knowledge_source', 'input')}",) if knowledge else ())
        b = pad_batch([item])
        h_top = model.upper(model.lower(b["input_ids"], b["mask"], b["token_type_ids"]), b["mask"], b["shapes"],
                            b["know"], n_text=int(b["n_text"]))
        e = model.word_emissions(h_top, [item["first"]])[0]
        labels = [model.labels[k] for k in model.viterbi(e)]
        base = len(doc.tokens)
        if not doc.tokens:
            doc.tokens = [Token(w, span=s, tag=lab) for w, s, lab in zip(words, spans, labels)]
        probs = {}
        n0 = len(doc.entities)
        for k, (s, t_end, typ) in enumerate(bio_to_spans(labels)):
            sw = subword_span(item, s, t_end)
            score = float(torch.stack([e[w].max() for w in range(s, t_end)]).mean().exp())
            cs, ce = spans[s][0], spans[t_end - 1][1]
            eid = f"m{n0 + k}"
            doc.entities.append(Entity(eid, doc.text[cs:ce], typ, tokens=list(range(s, t_end)) if base == 0 else [],
                                       span=(cs, ce), provenance=Provenance(doc.source, span=(cs, ce), model=MODEL_NAME,
                                                                            model_version=self.version,
                                                                            score=round(score, 4),
                                                                            evidence=evidence)))
            probs[eid] = float(model.ground_logits(h_top, [(0, sw[0], sw[1], typ)]).sigmoid()) if sw else 0.0
        return probs

    @torch.no_grad()
    def type_spans(self, items: list[tuple[list[str], list[tuple[int, int]]]],
                   batch_size: int = 32) -> list[list[tuple[str | None, float]]]:
        """The entity type of given word spans: for each ``(words, spans)`` (spans ``[start, end)`` over
        ``words``, known to be entities), each span's most probable type under this tagger — the type ``T``
        maximising the log-probability of tagging exactly that span ``B-T I-T ...`` — with its probability
        among the types (a softmax over those span scores); ``(None, 0.0)`` for a span that starts past the
        encoder's window (its words were cut off). Text only: no caption or knowledge is read."""
        model, labels = self.model, self.model.labels
        types = list(self.config["types"]["types"])
        b_idx = torch.tensor([labels.index(f"B-{t}") for t in types])
        i_idx = torch.tensor([labels.index(f"I-{t}") for t in types])
        out: list[list[tuple[str, float]]] = []
        maxlen = self.config["model"]["max_length"]
        for k in range(0, len(items), batch_size):
            chunk = items[k:k + batch_size]
            enc = [encode_example(self.tokenizer, words, "", maxlen) for words, _ in chunk]
            b = pad_batch(enc)
            h_top = model.upper(model.lower(b["input_ids"], b["mask"], b["token_type_ids"]), b["mask"], b["shapes"])
            for e, it, (words, spans) in zip(model.word_emissions(h_top, [it["first"] for it in enc]), enc, chunk):
                row = []
                for s, t in spans:
                    if not 0 <= s < t <= len(words):
                        raise ValueError(f"span {(s, t)} outside {len(words)} words")
                    if it["first"][s] < 0:                   # cut off by the window: no evidence of a type
                        row.append((None, 0.0))
                        continue
                    score = e[s, b_idx] + e[s + 1:t][:, i_idx].sum(0)
                    p = score.softmax(0)
                    j = int(p.argmax())
                    row.append((types[j], float(p[j])))
                out.append(row)
        return out

    def predict(self, doc: Document, max_regions: int | None = None, index=None,
                threshold: float | None = None, llm: str | None = None) -> Result:
        """Tag the post, then ground each entity in its image (:mod:`graphmie.grounding`) with the
        tagger's groundability. ``max_regions`` / ``threshold``: None = the config's ``[grounding]``;
        ``index``: a FAISS region index (or its folder) to link grounded regions to other images;
        ``llm``: a knowledge generator (:func:`graphmie.llm.get_generator` spec: ``local``, a
        ``.gguf`` path or an OpenAI-compatible URL) asked for the knowledge of a post that has none."""
        from ...grounding import get_grounder

        if doc.entities:
            # entities/pairs declared in a post JSON are inputs of --task post; this task finds its own
            doc.meta["ignored_input_entities"] = [e.text for e in doc.entities]
            doc.entities, doc.relations = [], []
        if llm and not self.reads_knowledge():
            raise GraphmieError("E030", self.ckpt.path, detail="this tagger was trained without knowledge, so "
                                "--llm would be ignored; use a knowledge tagger (--checkpoint entity_mner_riveg)")
        if llm and doc.knowledge is None:
            from ...llm import get_generator

            gen = self._generators.get(llm)
            if gen is None:
                gen = self._generators[llm] = get_generator(llm)
            doc.knowledge = gen.generate(doc.text, doc.caption)
            doc.meta["knowledge_source"] = gen.name
        elif doc.knowledge and not self.reads_knowledge():
            doc.meta["knowledge_ignored"] = "this tagger was trained without knowledge"
        probs = self.tag(doc)
        if self.members:
            doc.meta["entity_tagger_members"] = [self.ckpt.name] + [m.name for m in self.members]
        doc.meta["entity_type_hierarchy"] = dict(self.config["types"]["coarse"])
        g = self.config["grounding"]
        if doc.entities:
            get_grounder().ground(doc, doc.image or [], entities=doc.entities, ground_probs=probs,
                                  max_regions=g["max_regions"] if max_regions is None else max_regions,
                                  threshold=g["threshold"] if threshold is None else threshold, index=index)
        return Result(doc)

    # --- training -----------------------------------------------------------------------
    @classmethod
    def train(cls, config: dict, out_dir: Path) -> dict:
        from ...data.gmner import read_split

        cfg = cls.resolve_config(config, ((config or {}).get("meta") or {}).get("config_path"))
        d, tr = cfg["data"], cfg["training"]
        cap, ml, device = _check_caption(d["caption"]), cfg["model"]["max_length"], tr["device"]
        trainer = Trainer(tr["epochs"], seed=tr["seed"], threads=tr["threads"], device=device, schedule="linear",
                          warmup=0.06, weight_decay=0.01, clip=1.0, select="best", desc="mner")
        trainer.seed_everything()
        root = Path(d["root"])
        if not root.is_absolute() and not root.exists():
            root = REPO_ROOT / root
        train_split = read_split(root, d["train_split"])
        tweets = list(train_split.tweets)
        random.Random(tr["seed"]).shuffle(tweets)
        if d["limit"]:                       # small runs (tests): the first N shuffled tweets
            tweets = tweets[:d["limit"]]
        val, train = tweets[:d["val_tweets"]], tweets[d["val_tweets"]:]
        if set(cfg["types"]["types"]) != set(train_split.types):
            raise GraphmieError("E013", root / f"{d['train_split']}.txt",
                                detail=f"the data's types {list(train_split.types)} are not the config's "
                                f"[types] types {list(cfg['types']['types'])}")
        use_k = _check_knowledge(d["knowledge"]) == "auto" and train_split.knowledge_source != "none"
        kf, drop = cfg["model"]["knowledge_features"], float(d["knowledge_dropout"])
        tok, model = build_model(cfg)
        model.to(device)

        def samples(tws, knowledge):
            its = encode_tweets(tok, tws, cap, ml, knowledge=knowledge, features=kf)
            return its, lower_states(model, its, cap, ml)

        items, states = samples(train, use_k)
        n_train = len(items)
        if use_k and drop > 0:               # each epoch, a fraction of the tweets is seen without knowledge
            bare, bare_states = samples(train, False)
            items, states = items + bare, states + bare_states
        val_items, val_states = samples(val, use_k)
        out_dir = Path(out_dir)
        meta = {"labels": model.labels, "types": model.types,
                "knowledge": train_split.knowledge_source if use_k else "none", "benchmark": train_split.benchmark}
        threshold = cfg["grounding"]["threshold"]

        def epoch_batches(rng, ep):
            pick = [j + n_train if len(items) > n_train and rng.random() < drop else j for j in range(n_train)]
            chosen = [items[j] for j in pick]
            return [[pick[i] for i in b] for b in length_batches(chosen, tr["batch_size"], rng)]


        def step(idx):
            b, h = make_batch(items, states, idx, device)
            h_top = model.upper(h, b["mask"], b["shapes"], b["know"], n_text=int(b["n_text"]))
            tgt, spans, groundable = targets(model, items, idx, h_top.shape[1])
            return model.loss(h_top, tgt, spans, groundable, tr["ground_weight"])

        def on_best(state, figures):         # checkpoint the best epoch so far (long runs can be cut short)
            save_checkpoint(out_dir, cls.name, state, cfg, meta, {"status": "best epoch so far", "val": figures})

        top = [p for n, p in model.named_parameters() if p.requires_grad and n.startswith("backbone.")]
        head = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("backbone.")]
        trainer.seed_everything()            # as the shipped run: torch reseeded after the frozen layers ran
        res = trainer.fit(model, [{"params": top, "lr": tr["lr"]}, {"params": head, "lr": tr["head_lr"]}],
                          batches=epoch_batches, step=step,
                          steps_per_epoch=(n_train + tr["batch_size"] - 1) // tr["batch_size"],
                          evaluate=lambda: evaluate_items(model, val_items, val_states, threshold),
                          score=lambda m: m["mner_f1"] + 0.25 * m["ground_f1"], on_best=on_best,
                          state=model.trainable_state)
        dev_split = read_split(root, d["eval_split"])
        dev_tweets = dev_split.tweets[:d["limit"]] if d["limit"] else dev_split.tweets
        dev = evaluate_items(model, *samples(dev_tweets, use_k), threshold)
        if use_k:                            # the same tagger on posts that come without knowledge
            bare = evaluate_items(model, *samples(dev_tweets, False), threshold)
            dev.update({f"{k}_without_knowledge": bare[k] for k in ("mner_f1", "mner_precision", "mner_recall")})
        model.to("cpu")
        metrics = {"dev_" + k: v for k, v in dev.items()}
        metrics.update(best_epoch=res.best_epoch, train_seconds=res.seconds, n_train=len(train), n_val=len(val),
                       n_dev=len(dev_tweets), knowledge=meta["knowledge"], benchmark=train_split.benchmark)
        record = {"command": command_line(), "data": f"{root}: {d['train_split']} ({len(train)} train / {len(val)} "
                  f"val carved with seed {tr['seed']}), figures on {d['eval_split']}", "seed": tr["seed"],
                  "date": datetime.date.today().isoformat(), "dev_metrics": metrics, "history": res.history}
        save_checkpoint(out_dir, cls.name, model.trainable_state(), cfg, meta, record)
        write_run_record(out_dir, cfg, metrics, extra={"history": res.history, "data_stats": dict(train_split.stats)})
        return metrics

    # --- evaluation ---------------------------------------------------------------------
    def evaluate(self, data: Path, split: str | None = None, threads: int = 1, limit: int = 0, caption: str = "",
                 knowledge: str = "", llm: str = "", threshold: float | None = None) -> dict:
        """Figures on a Twitter-GMNER split (``dev`` by default): MNER / GMNER / EEG F1 (regions judged
        through groundability), groundability P/R/F1 against the majority baseline, data counts; on a
        Twitter-2015/2017 split (``valid`` by default; no boxes) the MNER figures only.
        ``caption``: blip2 | owl | none; ``knowledge``: auto (the folder's ``aux_*`` file) | none | the
        path of another knowledge file in the same format ("" = the config's; a tagger trained without
        knowledge reads none); ``llm``: generate every tweet's knowledge with this generator instead
        (:func:`graphmie.llm.get_generator`); ``limit``: the first N tweets only."""
        from ...data.gmner import count_unknown_xml, read_split
        from ...data.knowledge import attach_knowledge

        data = Path(data)
        split = split or ("dev" if (data / "dev.txt").exists() or not (data / "valid.txt").exists() else "valid")
        set_threads(threads)
        cfg = self.config
        ds = read_split(data, split)
        if not set(ds.types) <= set(self.model.types):
            raise GraphmieError("E013", data / f"{split}.txt", detail=f"the data's types {list(ds.types)} are not "
                                f"this tagger's {self.model.types} (a tagger of another benchmark? see --checkpoint)")
        tweets = ds.tweets[:limit] if limit else ds.tweets
        cap, ml = _check_caption(caption or cfg["data"]["caption"]), cfg["model"]["max_length"]
        knowledge, source = knowledge or cfg["data"]["knowledge"], ds.knowledge_source
        if llm:
            from ...llm import get_generator

            gen = get_generator(llm)
            for t, k in zip(tweets, gen.generate_many([(t.text, t.caption) for t in tweets], progress=True)):
                t.knowledge = k
            knowledge, source = "auto", gen.name
        elif knowledge not in KNOWLEDGE:         # another knowledge file, aligned as the folder's own
            for t, k in zip(ds.tweets, attach_knowledge(ds.tweets, Path(knowledge), ds.stats)):
                t.knowledge = k
            knowledge, source = "auto", f"file:{Path(knowledge).name}"
        use_k = self.reads_knowledge() and knowledge == "auto" and source != "none"
        items = encode_tweets(self.tokenizer, tweets, cap, ml, knowledge=use_k,
                              features=self.model.know_emb is not None)
        m = evaluate_items(self.model, items, lower_states(self.model, items, cap, ml),
                           float(cfg["grounding"]["threshold"] if threshold is None else threshold))
        head = {"task": "entity", "benchmark": ds.benchmark, "split": split, "n_tweets": len(tweets),
                "caption": cap, "knowledge": source if use_k else "none",
                "model": self.ckpt.name if self.ckpt else None, "members": [m.name for m in self.members]}
        if ds.benchmark != "twitter-gmner":   # no boxes: the entity figures only
            return {**head, **{k: m[k] for k in ("mner_f1", "mner_precision", "mner_recall", "n_entities")},
                    "data_stats": dict(ds.stats)}
        # majority baseline for groundability: the majority class of the training split when present
        ref = read_split(data, "train") if split != "train" and (data / "train.txt").exists() else ds
        frac = ref.stats["groundable_entities"] / max(ref.stats["entities"], 1)
        pos = m["n_groundable"] / max(m["n_entities"], 1)
        maj = {"f1": 2 * pos / (1 + pos), "accuracy": pos} if frac >= 0.5 else {"f1": 0.0, "accuracy": 1 - pos}
        return {**head, **m,
                "ground_majority_class": "groundable" if frac >= 0.5 else "not groundable",
                "ground_majority_f1": maj["f1"], "ground_majority_accuracy": maj["accuracy"],
                "ground_all_groundable_f1": 2 * pos / (1 + pos),
                "region_judged_by": "groundability (images unavailable): a groundable prediction matches a "
                                    "groundable gold entity; gmner_f1_lower/eeg_f1_lower count every groundable "
                                    "entity as wrong",
                "data_stats": dict(ds.stats),
                "xml_unknown_ids": count_unknown_xml(data, [ds, ref] if ref is not ds else [ds])}
