"""The bot's word-level tokenizer."""

from lab.generative.tokenizer import SPECIALS, Tokenizer, words


def test_words_are_lower_case_and_keep_inner_joins():
    assert words("Does the Zorvex have USB-C? Mail me: a.b@c.org, +44 20") == \
        ["does", "the", "zorvex", "have", "usb-c", "mail", "me", "a.b@c.org", "44", "20"]


def test_encode_decode_and_unknown_words():
    tok = Tokenizer(["how much is the lamp", "it costs 19 dollars"])
    assert tok.itos[:4] == list(SPECIALS)
    ids = tok.encode("How much is the kettle?")
    assert ids[-1] == tok.unk and tok.decode(ids[:-1]) == "how much is the"
    assert tok.unknown_share(ids) == 0.2 and tok.unknown_share([]) == 0.0
    assert tok.decode(tok.encode("it costs 19 dollars") + [tok.eos]) == "it costs 19 dollars"
