"""What every method shares: one :class:`~graphmie.engine.trainer.Trainer`, one checkpoint format
(:mod:`~graphmie.engine.checkpoint`), one frozen-encoder cache (:mod:`~graphmie.engine.cache`), one
static word-piece embedder (:mod:`~graphmie.engine.embedder`) and the :class:`~graphmie.engine.method.Method`
interface a method folder implements. Import from the modules themselves (nothing heavy is imported here)."""
