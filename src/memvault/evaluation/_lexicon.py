"""Word lists for the generated chat suite: people, places, things, and the small talk
between facts.

Written for this generator and independent of any dataset we evaluate on, so a suite
built from them cannot leak another benchmark's wording into a default tuned on it.
Lists are tuples (ordered) so a seeded draw is the same on every machine.
"""

from __future__ import annotations

FIRST_NAMES: tuple[str, ...] = (
    "Maya", "Jonas", "Priya", "Tomas", "Ines", "Kwame", "Lena", "Rafael", "Noor", "Emeka",
    "Sofia", "Declan", "Hana", "Mateo", "Yara", "Olu", "Freya", "Arjun", "Chiara", "Bilal",
    "Astrid", "Diego", "Mei", "Oskar", "Zanele", "Felix", "Leila", "Tariq", "Greta", "Ravi",
    "Amara", "Henrik", "Lucia", "Kenji", "Nadia", "Bruno", "Elif", "Samir", "Ingrid", "Kofi",
    "Marta", "Viktor", "Aisha", "Pablo", "Saoirse", "Dmitri", "Keiko", "Anders", "Fatima",
    "Luca", "Rosa", "Idris", "Wren", "Nikolai", "Thandi", "Emil", "Carmen", "Hugo",
)
#: Partners, siblings and colleagues come from a separate pool so a question naming
#: one of the two speakers never matches a partner's name.
OTHER_NAMES: tuple[str, ...] = (
    "Sam", "Alex", "Robin", "Jamie", "Charlie", "Morgan", "Taylor", "Jordan", "Casey",
    "Riley", "Avery", "Quinn", "Dana", "Kai", "Noa", "Sasha", "Eli", "Remy", "Jules",
    "Toni", "Frankie", "Marlo", "Ash", "Lou", "Parker", "Rowan", "Sky", "Blair",
)
SURNAMES: tuple[str, ...] = (
    "Silva", "Okafor", "Lindqvist", "Moreau", "Nakamura", "Haddad", "Kowalski", "Reyes",
    "Brennan", "Mensah", "Petrov", "Castillo", "Achterberg", "Fernandes", "Iyer", "Novak",
    "Adeyemi", "Larsen", "Romano", "Takahashi", "Dubois", "Kaya", "Osei", "Varga",
)
HANDLE_WORDS: tuple[str, ...] = (
    "nightowl", "bluekettle", "tinyfox", "pixelmoth", "saltwater", "quietstorm",
    "mossy", "paperplane", "lemonzest", "grumpycat", "orbit", "driftwood", "copperleaf",
    "sundial", "wildthyme", "fogline",
)
CITIES: tuple[str, ...] = (
    "Porto", "Lisbon", "Berlin", "Oslo", "Rotterdam", "Lyon", "Valencia", "Krakow",
    "Edinburgh", "Dublin", "Tallinn", "Ghent", "Bologna", "Seville", "Gothenburg",
    "Leipzig", "Bristol", "Nantes", "Zagreb", "Ljubljana", "Helsinki", "Aarhus",
    "Montreal", "Vancouver", "Austin", "Denver", "Melbourne", "Wellington", "Nairobi",
    "Accra", "Kyoto", "Busan", "Cape Town", "Bilbao", "Turin", "Brno", "Utrecht", "Cork",
)
COMPANIES: tuple[str, ...] = (
    "Northwind Logistics", "Bluefin Analytics", "Harbor Health", "Quillstone Media",
    "Tidewater Energy", "Larkspur Games", "Copperline Bank", "Ferrous Robotics",
    "Greenhollow Foods", "Atlas Freight", "Brightpath Schools", "Kestrel Aviation",
    "Marigold Pharma", "Ironbark Construction", "Silverleaf Insurance", "Pinecrest Labs",
    "Redwood Legal", "Solstice Travel", "Cobalt Security", "Meadowlark Studios",
    "Orchard Software", "Nimbus Cloud", "Granite Consulting", "Willow Architecture",
    "Saffron Restaurants", "Lumen Optics", "Halcyon Hotels", "Vantage Retail",
)
PET_SPECIES: tuple[str, ...] = (
    "cat", "dog", "rabbit", "parrot", "tortoise", "hamster", "ferret", "guinea pig",
    "gecko", "budgie",
)
PET_NAMES: tuple[str, ...] = (
    "Biscuit", "Pixel", "Mochi", "Pepper", "Juniper", "Waffles", "Nugget", "Clementine",
    "Rufus", "Olive", "Ziggy", "Marmalade", "Turnip", "Sprocket", "Luna", "Bramble",
    "Tofu", "Basil", "Captain", "Noodle", "Fig", "Dumpling", "Gizmo", "Hazel",
)
CARS: tuple[str, ...] = (
    "a second-hand Honda Civic", "a red Fiat Panda", "an electric Kia Niro",
    "a Volvo estate", "a vintage VW Beetle", "a Toyota Yaris", "a Skoda Octavia",
    "a Renault Zoe", "a Mazda MX-5", "a Ford Transit van", "a Tesla Model 3",
    "a Subaru Outback", "a Peugeot 208", "a Nissan Leaf", "a Mini Cooper", "a BMW i3",
)
HOBBIES: tuple[str, ...] = (
    "pottery", "bouldering", "salsa dancing", "sourdough baking", "chess", "birdwatching",
    "the cello", "watercolour painting", "trail running", "beekeeping", "woodworking",
    "rowing", "Japanese lessons", "knitting", "improv theatre", "open-water swimming",
    "calligraphy", "fencing", "the ukulele", "astrophotography", "kickboxing",
    "urban sketching",
)
#: Injuries and conditions, phrased so "I have {value}" reads for each.
HEALTH: tuple[str, ...] = (
    "a sprained ankle", "a broken wrist", "a torn knee ligament", "a fractured collarbone",
    "a pulled hamstring", "a slipped disc", "asthma", "migraines", "coeliac disease",
    "anaemia", "high blood pressure", "an underactive thyroid", "tennis elbow",
    "a stress fracture in my foot", "shingles", "glandular fever",
)
#: Things to do in a given month: "I'm planning to {plan} in October".
PLANS: tuple[str, ...] = (
    "run the half marathon", "do a two-week trip to Japan", "walk the Camino de Santiago",
    "take a pottery course in Crete", "visit my grandmother in Krakow",
    "go on a sailing trip around the Greek islands", "learn to ski in the Alps",
    "hike the West Highland Way", "take a cooking class in Oaxaca",
    "volunteer at a turtle sanctuary in Costa Rica", "attend a jazz festival in Montreux",
    "cycle from Amsterdam to Copenhagen", "go to a silent meditation retreat",
    "take my parents to Iceland",
)
DRINKS: tuple[str, ...] = (
    "oat flat whites", "green tea", "espresso", "yerba mate", "chai lattes",
    "hot chocolate", "kombucha", "cold brew", "rooibos tea", "matcha", "sparkling water",
    "iced americanos",
)
RELATIVES: tuple[str, ...] = (
    "my sister", "my brother", "my cousin", "my mum", "my dad", "my boss", "my flatmate",
    "my neighbour", "a friend from uni", "my best friend", "my aunt", "my colleague",
)

GREETINGS: tuple[str, ...] = (
    "Hey {other}!", "Morning {other}!", "Hiya, long time no talk!", "Hi hi!",
    "Evening! Got a minute?", "Yo {other}, you around?", "Hello hello!",
    "Hey, it's been ages.", "Hi {other}, hope your week's going ok.",
    "Ok I finally have time to reply properly.",
)
REPLIES_TO_GREETING: tuple[str, ...] = (
    "Hey! Good to hear from you.", "Hi! Yes, just finished dinner.", "Hey {other}!",
    "Morning! Coffee in hand, ready to chat.", "Hiii, perfect timing.",
    "Hey you. All good here, mostly.", "Oh hi! I was about to message you.",
)
GOODBYES: tuple[str, ...] = (
    "Gotta run, talk soon!", "Ok, bedtime for me. Night!", "Catch you later.",
    "Speak soon, take care.", "Right, back to it. Bye for now!",
    "Let's catch up again next week.", "I need to go cook. Later!",
    "Battery's dying, ttyl.",
)
REACTIONS: tuple[str, ...] = (
    "Oh wow, that's big news!", "No way! Congrats!", "Ha, I did not see that coming.",
    "That's amazing, you deserve it.", "Wait, really? Tell me everything.",
    "Huh, how are you feeling about it?", "Wow. Big week for you then.",
    "Nice one!", "Oh that's lovely to hear.", "Good for you, honestly.",
    "Hmm, sounds like a lot at once.", "Oh! I had no idea that was in the works.",
)
#: After bad news: a break-up, a lost job, a diagnosis.
SYMPATHY: tuple[str, ...] = (
    "Oh no, I'm sorry.", "That's rough, are you ok?", "Oof. Sending hugs.",
    "Honestly, maybe for the best?", "Ugh, that's a lot. Here if you need anything.",
    "Oh man. How are you holding up?",
)
#: Reactions that echo the value (a real chat repeats it; the echo is never evidence).
ECHOES: tuple[str, ...] = (
    "{value}? How is that going so far?", "Oh, {value}! Send pictures.",
    "So {value} now, huh. Didn't expect that.", "{value}, nice. Is it what you hoped?",
)
OPENERS: tuple[str, ...] = (
    "Big news:", "Oh, before I forget -", "Anyway,", "So,", "Long week here.",
    "Update from my end:", "Random but", "Guess what?", "Quick life update:",
    "Ok so", "Not sure if I told you, but", "Funny story.", "Honestly, what a month.",
    "Sorry for the radio silence.",
)
TAILS: tuple[str, ...] = (
    "How's your week going?", "Still getting used to it.", "Anyway, how are you?",
    "Feels surreal.", "Mum is thrilled, obviously.", "Wish me luck!",
    "More on that later.", "What have you been up to?", "Life comes at you fast.",
    "I'll tell you more when I see you.",
)
#: Small talk between facts. Some lines reuse words the facts use ("move", "work",
#: "new") in another sense, as real chat does.
FILLER: tuple[str, ...] = (
    "The weather has been grey all week, I'm craving sunshine.",
    "Did you watch the finale of that detective show? I'm still annoyed.",
    "I made a huge pot of lentil soup, it's lasting me days.",
    "Work has been hectic, lots of meetings that could have been emails.",
    "I had to move my dentist appointment again, ugh.",
    "Have you read anything good lately? I need a new book.",
    "My phone screen cracked this morning. Classic Monday.",
    "I'm trying to drink more water. Day three, going ok.",
    "The neighbours are renovating and the drilling starts at eight.",
    "I finally cleaned out the fridge. Don't ask what I found.",
    "There's a new bakery on the corner and their croissants are dangerous.",
    "Just back from a long walk, my legs are jelly.",
    "I've been listening to a podcast about deep-sea creatures, so weird and great.",
    "Traffic was a nightmare today, took an hour to get anywhere.",
    "Spent the whole Sunday doing laundry and ignoring emails.",
    "Thinking of getting a new plant for the living room. Any tips?",
    "My laptop keeps freezing, I think it's time for an update.",
    "We had a power cut last night, candles and board games it was.",
    "Tried a new recipe with chickpeas and smoked paprika, pretty good.",
    "I keep forgetting to call the bank. Adding it to the list.",
    "Saw the most ridiculous dog in a raincoat today.",
    "I'm so tired, I slept terribly.",
    "The train was cancelled again, so I worked from a cafe.",
    "Do you have plans for the weekend? Mine are mostly sleeping.",
    "I watched a documentary about glaciers and now I'm worried.",
    "My playlist has been nothing but eighties synth pop this week.",
    "Somebody at work brought cake, which saved the afternoon.",
    "I need new running shoes, these are falling apart.",
    "Finally fixed the squeaky door. Felt like a genius for a minute.",
    "The market had amazing strawberries this morning.",
    "I'm trying to learn to make proper coffee at home. Mixed results.",
    "Ugh, my inbox is at three hundred unread.",
    "Got caught in the rain without an umbrella. Again.",
    "I rearranged the furniture and now I can't find anything.",
    "Our group chat is planning a picnic but nobody can agree on a date.",
    "Started a new series last night and watched four episodes, oops.",
    "I burnt the toast and set off the smoke alarm. Neighbours loved it.",
    "My houseplants are thriving, which is more than I can say for me.",
    "Went to a quiz night and we came second to last. Proud.",
    "I've been journaling in the mornings. Weirdly calming.",
    "The cinema near me is showing old classics this month.",
    "It's finally warm enough to sit outside in the evening.",
    "My back hurts from sitting all day, I need a better chair.",
    "Ordered takeaway three nights in a row. No regrets.",
    "There was a street festival downtown, so loud but fun.",
    "I spent an hour choosing a new phone case. Time well spent.",
    "New month, new budget spreadsheet. We'll see how long it lasts.",
    "Our office moved the coffee machine and everyone is lost.",
)
FILLER_REPLIES: tuple[str, ...] = (
    "Ha, relatable.", "Oh no, that sounds annoying.", "Same here honestly.",
    "Love that for you.", "Ugh, I feel that.", "Haha, classic.",
    "That's so you.", "Oh nice, I'd like to try that.", "Hope it gets better!",
    "Tell me about it.", "Lol. Sending strength.", "Ooh, good to know.",
    "Wait, which one?", "You're not alone there.", "That made me laugh.",
    "Been there.", "Nice, sounds like a good day at least.",
)
