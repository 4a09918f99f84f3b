"""A realistic set of questions Moment's demo content (content/) does not answer, by topic: paraphrases of
six missing topics and a few one-off questions. For the gap clustering tests and bench/gaps.py."""

TOPICS = {
    "parental leave": [
        "how many weeks of parental leave do I get",
        "how long is paternity leave",
        "can I take shared parental leave",
        "what is the maternity leave policy",
        "parental leave entitlement for new dads",
    ],
    "van charging": [
        "where can I charge the electric van",
        "charging points for the EV vans",
        "how do I charge my electric fleet van at home",
        "is there a charging card for the electric van",
        "can I charge the electric van at the depot",
    ],
    "cracked tablet": [
        "my field tablet screen is cracked",
        "tablet screen broken, who repairs it",
        "how do I get a replacement for a smashed tablet screen",
        "cracked screen on my work tablet",
    ],
    "pension": [
        "how do I change my pension contributions",
        "increase my contribution to the company pension scheme",
        "where can I see my pension statement",
        "pension contribution percentage change",
    ],
    "smart meter": [
        "how to install a smart meter",
        "smart meter installation steps",
        "procedure for fitting a smart meter",
        "what do I do before installing a smart meter at a customer's house",
    ],
    "asbestos": [
        "what to do if I find asbestos on site",
        "suspected asbestos in a customer's loft",
        "I think I found asbestos during a job",
        "asbestos found while drilling, what now",
    ],
}
ONE_OFFS = ["can I bring my dog to the depot", "what is on the canteen menu today"]
