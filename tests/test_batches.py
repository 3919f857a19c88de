"""Labels for the loss: the forced prompt and padding never count, every text token and eos does."""

from asrprune.batches import IGNORE_INDEX, encode_targets


class _FakeTokenizer:
    """A character tokenizer: enough to check the label layout without a real vocabulary."""

    def encode(self, text, add_special_tokens=False):
        return [ord(c) % 50 for c in text]


def test_prompt_and_padding_are_not_labels():
    prompt = [97, 98]  # start-of-transcript, no-timestamps
    inputs, labels = encode_targets(_FakeTokenizer(), ["ab", "abcd"], prompt, eos_id=99)
    # longest: prompt(2) + " abcd"(5) + eos -> 8 tokens -> 7 input positions
    assert inputs.shape == labels.shape == (2, 7)
    assert inputs[1, 0].item() == 97 and inputs[1, 1].item() == 98
    # position 0 predicts the token after start-of-transcript: a forced prompt token, not a label
    assert labels[1, 0].item() == IGNORE_INDEX
    assert labels[1, 1].item() == ord(" ") % 50  # the first text token is predicted at position 1
    assert labels[1, -1].item() == 99  # eos is a label
    # short row: 3 text tokens + eos are labels, the rest is padding
    assert (labels[0] != IGNORE_INDEX).sum().item() == 4
    assert (labels[0, 5:] == IGNORE_INDEX).all()
    # teacher forcing: the label at t is the input at t + 1
    assert labels[1, 1:-1].tolist() == inputs[1, 2:].tolist()
