"""Phrasings for the built-in `support-tickets` task (data only; the generator is tickets.py).

The categories overlap on purpose, as real queues do: "charged" appears in billing, refund and
cancellation tickets; "order" in shipping, damaged-item and refund tickets; "login" in access and bug
reports. The label is the customer's *request*, not a keyword, and each ticket may carry a distractor
sentence from another category's vocabulary. `held_out` phrasings never appear in generated training
data; they let an evaluation test paraphrases the model cannot have memorized.
"""

CATEGORIES: dict[str, dict[str, list[str]]] = {
    "billing": {
        "seen": [
            "I was charged {amount} twice this month for my {plan} plan. Can you check what happened?",
            "Why is my invoice {amount} when the {plan} plan is supposed to be cheaper?",
            "my card keeps getting declined when I try to pay the {plan} subscription",
            "There's a charge of {amount} on my statement from {date} that I don't recognize.",
            "Can I get a copy of the invoice for {date}? Our accountant needs it.",
            "The price went up to {amount} without any notice. Is that right for the {plan} tier?",
            "how do i change the credit card you bill every month",
            "I need the VAT number added to our invoices going forward.",
            "You billed us for 12 seats but we only have 9 users on {plan}.",
            "payment failed again even though the card is valid until 2029, please look into the billing side",
        ],
        "held_out": [
            "Our finance team sees two identical debits of {amount} on {date}; which one is correct?",
            "Could you explain the line items on this month's bill? The total of {amount} looks off.",
            "The receipt you emailed doesn't show our company address, can it be reissued?",
        ],
    },
    "refund": {
        "seen": [
            "I'd like my money back for the {product}, it's not what I expected.",
            "Please refund the {amount} for {order}. I returned it on {date}.",
            "I was charged {amount} for a plan I never used and I want a refund.",
            "Still waiting for my refund for {order}, you said 5 business days and it's been {date}.",
            "can i get a refund on the {plan} upgrade? i clicked it by accident",
            "The {product} I returned was received by your warehouse, where is my reimbursement?",
            "Requesting a full refund of {amount}; the event was cancelled on your side.",
            "refund please!! the {product} never worked and I sent it back",
            "How long does it take for the refund to show on my card after a return?",
            "I'd rather have store credit instead of a refund for {order}, is that possible?",
        ],
        "held_out": [
            "Can the {amount} be put back on my card? I no longer want the {product}.",
            "Your return label was used on {date}; I'm now waiting on the money for {order}.",
            "Please reverse the payment for the {plan} renewal, I'd like it returned to me.",
        ],
    },
    "account_access": {
        "seen": [
            "I can't log in, it says my password is wrong but I just reset it.",
            "My account got locked after too many attempts. Can you unlock it? Username is {name_lower}{digits}.",
            "The two-factor code never arrives on my phone so I can't get into my account.",
            "password reset email is not coming through, checked spam too",
            "I lost my phone with the authenticator app and now I'm locked out.",
            "Why does the {app} keep logging me out and asking for my password?",
            "I changed my email and now I don't know which one to sign in with.",
            "Someone else might have accessed my account, I got a login alert from another country.",
            "cant sign in on the {app}, says account not found but I have used it for years",
            "Our admin left the company and nobody can get into the admin account anymore.",
        ],
        "held_out": [
            "The verification step rejects every code I type, so I'm stuck at the sign-in page.",
            "I'm unable to access my profile since {date}; the site says my credentials are invalid.",
            "Please help me regain entry to my account, the recovery link has expired twice.",
        ],
    },
    "shipping": {
        "seen": [
            "Where is my order {order}? The tracking hasn't updated since {date}.",
            "my package was supposed to arrive {date} and it's still not here",
            "Can I change the delivery address for {order}? I'm moving this week.",
            "The tracking says delivered but there's no {product} at my door.",
            "Do you ship to Canada, and how long does it take?",
            "Is there a way to upgrade {order} to express shipping? I need the {product} by Friday.",
            "The courier left a note that they couldn't deliver. How do I reschedule?",
            "Order {order} has been 'in transit' for two weeks, is it lost?",
            "why is shipping {amount} for a {product}? that seems like a lot",
            "Can you split my order so the {product} ships now and the rest later?",
        ],
        "held_out": [
            "No movement on the parcel for {order} in days, can you ask the carrier where it is?",
            "I won't be home on {date}; could the {product} be held at a pickup point instead?",
            "What's the expected arrival window for my purchase? I ordered the {product} on {date}.",
        ],
    },
    "damaged_item": {
        "seen": [
            "The {product} arrived with a cracked base. What should I do?",
            "You sent me the wrong item: I ordered the {product} and got something else in {order}.",
            "Box was crushed and the {product} inside is scratched all over.",
            "Half of {order} is missing, only one of the two {product}s was in the package.",
            "the {product} came broken, a piece snapped off when I opened it",
            "I received a {product} in the wrong color and size.",
            "The {product} was delivered on {date} but it's dented and won't turn on.",
            "Parts are missing from the {product}, there are no screws in the box.",
            "I got someone else's order, the label says {name} but the contents aren't mine.",
            "my {product} leaked all over the box, it was clearly damaged in transit",
        ],
        "held_out": [
            "Unboxed the {product} today and the screen has a big scratch, can you send a replacement?",
            "The parcel for {order} contained a completely different product than the one I paid for.",
            "One corner of the {product} is shattered; the packaging was torn when it got here.",
        ],
    },
    "bug_report": {
        "seen": [
            "The {app} crashes every time I open the settings page.",
            "I get {error} when I try to export my data.",
            "After the last update the {app} shows {error} on the dashboard.",
            "the search box returns nothing even for items I know exist",
            "Clicking save on the invoice editor does nothing, no error, nothing happens.",
            "Notifications in the {app} show up twice since {date}.",
            "The login button in the {app} is greyed out on Android 14, looks like a bug.",
            "Charts on the reports page render blank in Firefox but work in Chrome.",
            "Sync between the {app} and the website keeps failing with {error}.",
            "when I upload a photo the {app} freezes and I have to force quit",
        ],
        "held_out": [
            "Something is broken in the {app}: pressing 'next' jumps back to the start every time.",
            "Reproducible glitch: opening a report twice shows {error} the second time.",
            "The totals on the summary page are wrong after you edit a row, please fix.",
        ],
    },
    "feature_request": {
        "seen": [
            "It would be great if the {app} had {feature}.",
            "Any plans to add {feature}? We'd pay more for it on the {plan} plan.",
            "Please consider adding {feature} to the web dashboard.",
            "Suggestion: let us schedule reports to go out every Monday.",
            "We'd love an integration with {integration}, is that on the roadmap?",
            "could you make it possible to have more than one admin per account",
            "I wish I could filter orders by date range, that would save me hours.",
            "Is {feature} coming to the {app} soon? Our team really needs it.",
            "Feature idea: a way to pause notifications on weekends.",
            "Would you add {feature}? The competitors all have it.",
        ],
        "held_out": [
            "Our team keeps asking for {feature}; please put it on the list for the next release.",
            "It would help a lot to get a weekly digest email of activity, any chance?",
            "Could the {app} support {integration} natively some day? We'd use it daily.",
        ],
    },
    "cancellation": {
        "seen": [
            "Please cancel my {plan} subscription effective immediately.",
            "How do I stop the automatic renewal? I don't want to be charged again.",
            "I want to close my account and delete everything.",
            "cancel my membership please, I'm moving to another provider",
            "We're not renewing the {plan} plan next year, what do we need to do?",
            "Can I cancel {order} before it ships? I ordered by mistake.",
            "I'd like to end my subscription at the end of this billing period.",
            "Turn off auto-renew on my account, I'll decide later if I come back.",
            "how do I unsubscribe from the paid plan, I can't find the button",
            "Our company is shutting down, please terminate our contract for {plan}.",
        ],
        "held_out": [
            "I no longer need the service; kindly stop my plan before the next charge on {date}.",
            "Please make sure my {plan} membership doesn't continue after this month.",
            "We've decided to discontinue using your product; what's the process to end it?",
        ],
    },
    "technical_setup": {
        "seen": [
            "How do I connect the {device} to my Wi-Fi? The manual isn't clear.",
            "I'm trying to set up the {integration} integration but can't find the API key.",
            "What are the steps to install the desktop app on a Mac?",
            "can you walk me through configuring SSO for our team",
            "The {device} needs a firmware update, how do I do that?",
            "How do I import my contacts from a CSV file during setup?",
            "Which ports need to be open for the {device} to work behind our firewall?",
            "I need help pairing the {device} with the {app}.",
            "what webhook URL should I use to connect to {integration}?",
            "Setting up a new {device} for my office, where do I enter the activation code?",
        ],
        "held_out": [
            "First time user here: what do I need to configure before the {device} goes online?",
            "Is there a guide for linking our {integration} workspace with your platform?",
            "Getting started question: how do I register the {device} to my account?",
        ],
    },
    "profile_update": {
        "seen": [
            "Please update the email on my account to {name_lower}@example.com.",
            "I'd like to upgrade from {plan} to the next plan up.",
            "How do I change the name on my account? I got married.",
            "Can I downgrade to the {plan} plan without losing my data?",
            "please change my phone number on file, the old one no longer works",
            "Add my colleague {name} as a user on our account.",
            "Can you transfer ownership of the account to {name}?",
            "I need to update the billing address on my profile to our new office.",
            "switch my plan to annual instead of monthly please",
            "How do I remove a user who left our team from the account?",
        ],
        "held_out": [
            "Could you rename our workspace and set {name} as the primary contact?",
            "I'd like my profile to use my work address from now on instead of the personal one.",
            "We're growing; please move us up from {plan} to a bigger tier.",
        ],
    },
}

# Sentences that borrow another category's words without changing the request. A keyword model is
# pulled toward the wrong class by them; a model that reads the request is not.
DISTRACTORS: list[str] = [
    "I'm not looking for a refund, just an answer.",
    "I don't want to cancel, I like the service.",
    "My billing details are all up to date.",
    "The order itself arrived fine last time.",
    "I already tried logging out and back in.",
    "This is not a complaint about shipping.",
    "I've been a {plan} customer for three years.",
    "I paid {amount} for this, so I'd like it sorted.",
    "My last order {order} was perfect.",
    "Your app is otherwise great.",
    "I updated the app yesterday.",
    "We may upgrade our plan later this year.",
]

GREETINGS = ["Hi,", "Hello,", "Hey there,", "Good morning,", "Hi team,", "Dear support,", "", "", ""]
CLOSINGS = ["Thanks!", "Thank you.", "Thanks, {name}", "Regards, {name}", "Cheers", "Please help.", "", "", ""]

OUT_OF_SCOPE: list[str] = [
    "Are you hiring software engineers in Berlin?",
    "What's the weather going to be like this weekend?",
    "I'm a journalist writing about your company, who can I talk to for an interview?",
    "Can you recommend a good laptop for video editing?",
    "Do you have any internships for the summer?",
    "Is your company planning to go public?",
    "What's the best way to learn Python?",
    "I'd like to propose a partnership between our companies.",
    "Can you tell me a joke?",
    "Who won the football game last night?",
    "How do I cook rice in a pressure cooker?",
    "Is it safe to invest in crypto right now?",
    "What is the capital of Australia?",
    "Can I bring my dog to your office?",
    "Do you sponsor local sports teams?",
    "My neighbour's tree is blocking my view, what can I do legally?",
    "Which of your competitors do you think is best?",
    "Could you translate this sentence into French for me?",
    "I'm selling office furniture, would your company be interested?",
    "How many people work at your headquarters?",
    "What's a good name for my new puppy?",
    "Can you help me with my math homework?",
    "Where can I buy concert tickets for next month?",
    "I want to speak at your next developer conference.",
    "What time zone is your CEO in?",
    "Do you know a good plumber near {city}?",
    "How do I renew my passport?",
    "What's your opinion on remote work?",
    "Hi {name} here, I'd like to donate to your charity program.",
    "Can you write a poem about the ocean?",
]

SLOTS: dict[str, list[str]] = {
    "name": ["Maria", "James", "Aisha", "Chen", "Olga", "Luis", "Priya", "Tom", "Fatima", "Kenji", "Sara", "Ahmed", "Noah", "Emma", "Ivan", "Zoe"],
    "product": ["wireless headphones", "standing desk", "coffee grinder", "yoga mat", "laptop stand", "smart thermostat",
                "backpack", "blender", "desk lamp", "pair of running shoes", "phone case", "air purifier", "office chair", "kettle"],
    "plan": ["Basic", "Plus", "Pro", "Team", "Business", "Family", "Starter", "Enterprise"],
    "app": ["mobile app", "web dashboard", "desktop app", "browser extension", "iOS app", "Android app"],
    "device": ["router", "smart speaker", "printer", "tablet", "home hub", "security camera", "card reader", "label printer"],
    "feature": ["dark mode", "export to CSV", "bulk editing", "a calendar view", "multi-currency invoices", "offline mode",
                "keyboard shortcuts", "shared folders", "custom reports", "recurring tasks", "audit logs"],
    "error": ["error 500", "a blank white screen", "'something went wrong'", "error code E-104", "a spinner that never stops",
              "'session expired'", "a 404 page", "'unexpected token'"],
    "integration": ["Slack", "Shopify", "Zapier", "Google Calendar", "Salesforce", "QuickBooks", "Outlook", "HubSpot"],
    "city": ["Leeds", "Austin", "Lyon", "Osaka", "Porto", "Denver"],
}
