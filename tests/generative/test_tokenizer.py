"""The bot's word-level tokenizer."""

from lab.generative.tokenizer import SPECIALS, Tokenizer, words


def test_words_are_lower_case_and_keep_inner_joins():
    assert words("Does the Zorvex have USB-C? Mail me: a.b@c.org, +44 20") == \
        ["does", "the", "zorvex", "have", "usb-c", "mail", "me", "a.b@c.org", "44", "20"]


def test_encode_decode_and_unknown_words():
    tok = Tokenizer(["how much is the lamp", "it costs 19 dollars"])
    assert tok.itos[:len(SPECIALS)] == list(SPECIALS)
    ids = tok.encode("How much is the kettle?")
    assert ids[-1] == tok.unk and tok.decode(ids[:-1]) == "how much is the"
    assert tok.unknown_share(ids) == 0.2 and tok.unknown_share([]) == 0.0
    assert tok.decode(tok.encode("it costs 19 dollars") + [tok.eos]) == "it costs 19 dollars"


def test_contact_details_become_one_placeholder_each_and_nothing_of_the_value_remains():
    tok = Tokenizer(["my email is", "call me on", "my card is", "how much is the lamp"])
    text = "my email is jane.li7@example.com call me on +44 20 1234 5678 my card is 4000 0000 0000 0002 how much is the lamp"
    ids = tok.encode(text)
    assert tok.decode(ids) == ("my email is <email> call me on <phone> my card is <card> how much is the lamp")
    assert tok.unknown_share(ids) == 0.0
    # a number that is not a valid card (Luhn) is words, as before
    assert tok.decode(tok.encode("my card is 4000 0000 0000 0001")) == "my card is <unk> <unk> <unk> <unk>"
