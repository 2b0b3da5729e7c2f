"""Training (continual pretraining, SFT, LoRA, distillation) on tokenized release shards.

Empty until the trainer issue lands; the package exists so the layout and imports are stable.
"""
