"""The reader's network (training side; PyTorch): a joint encoder with a similarity head.

Question and passage are read together, as one sequence ([CLS] question [SEP] passage [SEP]), by
the first `layers` transformer layers of all-MiniLM-L6-v2, so every word of each attends to the
other. The head mean-pools the question's and the passage's tokens separately and scores

    logit = scale * cos(q, p) + w . (q * p) + bias       (q, p normalised)

Starting from the bundled sentence-embedding weights, the cosine term already ranks passages about
as well as the embedding model does (a classification head on [CLS] starts from chance, because this
model never trained its [CLS] token), and training sharpens it from there.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn


class PairScorer(nn.Module):
    def __init__(self, bert: nn.Module, scale: float = 20.0, bias: float = -10.0) -> None:
        super().__init__()
        self.bert = bert
        hidden = bert.config.hidden_size
        self.scale = nn.Parameter(torch.tensor(scale))
        self.bias = nn.Parameter(torch.tensor(bias))
        self.mix = nn.Linear(hidden, 1, bias=False)
        nn.init.zeros_(self.mix.weight)

    @classmethod
    def from_pretrained(cls, model_dir: Path, layers: int) -> PairScorer:
        from transformers import AutoModel

        bert = AutoModel.from_pretrained(str(model_dir), add_pooling_layer=False)
        bert.encoder.layer = bert.encoder.layer[:layers]
        bert.config.num_hidden_layers = layers
        return cls(bert)

    def head_parameters(self) -> list[nn.Parameter]:
        return [self.scale, self.bias, self.mix.weight]

    def forward(self, input_ids, attention_mask, token_type_ids):
        hidden = self.bert(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        passage = token_type_ids.unsqueeze(-1).to(hidden.dtype) * mask
        question = mask - passage
        q = (hidden * question).sum(1) / question.sum(1).clamp(min=1.0)
        p = (hidden * passage).sum(1) / passage.sum(1).clamp(min=1.0)
        q = nn.functional.normalize(q, dim=-1)
        p = nn.functional.normalize(p, dim=-1)
        both = q * p
        logit = self.scale * both.sum(-1) + self.mix(both).squeeze(-1) + self.bias
        return logit.unsqueeze(-1)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.bert.config.save_pretrained(str(directory))
        torch.save(self.state_dict(), directory / "scorer.pt")
        (directory / "scorer.json").write_text(json.dumps({"layers": self.bert.config.num_hidden_layers}))

    @classmethod
    def load(cls, directory: Path) -> PairScorer:
        from transformers import AutoConfig, AutoModel

        config = AutoConfig.from_pretrained(str(directory))
        bert = AutoModel.from_config(config, add_pooling_layer=False)
        model = cls(bert)
        model.load_state_dict(torch.load(directory / "scorer.pt", weights_only=True))
        return model.eval()
