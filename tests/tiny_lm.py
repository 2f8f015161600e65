"""A tiny randomly initialised Llama with a small byte-level tokenizer and a ChatML chat template.

Fast stand-in for SmolLM2 in unit tests: the soft-token path, the losses and the rankings are exact
computations whose correctness does not depend on the model knowing anything.
"""

from __future__ import annotations

CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")

CORPUS = ["Which movie was added between <SeqHere> and <SeqHere>? Name it.", "Toy Story (1995)", "Heat (1995)",
          "Usual Suspects, The (1995)", "Star Wars (1977)", "The user has watched these movies in order.",
          "What is encoded in this state? List the titles."] * 20


def tiny_tokenizer(chat_template: bool = True):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    core.train_from_iterator(CORPUS, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<|im_start|>" if chat_template else "<|endoftext|>",
                                        eos_token="<|im_end|>" if chat_template else "<|endoftext|>",
                                        pad_token="<|endoftext|>")
    if chat_template:
        tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def tiny_llama(vocab_size: int, hidden: int = 32, seed: int = 0):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=vocab_size, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)
    return LlamaForCausalLM(config).eval()


def tiny_soft_lm(chat_template: bool = True, seed: int = 0):
    from lucidrec.lm.soft_prompt import SoftPromptLM

    tokenizer = tiny_tokenizer(chat_template)
    return SoftPromptLM(tiny_llama(len(tokenizer), seed=seed), tokenizer, identity=f"tiny-llama-{seed}")
