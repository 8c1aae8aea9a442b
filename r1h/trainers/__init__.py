"""TRL-based trainers: SFT, GRPO and GRPO-VL, with recipes shipped as YAML."""
