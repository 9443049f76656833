"""The injection guard's rules: what each family of attack looks like, and its weight.

Each rule is ``(family, name, weight, regex, case_sensitive)`` and runs on normalised text
(see :mod:`.text`). A weight is how sure one match makes us: >= 0.5 flags alone
(the default threshold), below that a rule only counts together with another. Each rule
also has trigger substrings: its regex runs only if one of them is in the lower-cased
text, which is what keeps benign text cheap. Add a rule here with its triggers; the
guard picks it up.
"""

from __future__ import annotations

import re

__all__ = ["RULES"]

_W = r"(?:\s+[\w'’-]+)"  # one more word
_VERB_IGNORE = (r"(?:ignore|ignoring|disregard|forget|skip|bypass|override|overlook|neglect|"
                r"abandon|discard|dismiss|delete|erase|clear|cancel|drop)")
_PRIOR = (r"(?:previous|prior|preceding|above|earlier|former|initial|original|foregoing|old|"
          r"all|any|every|your|the|these|those|system|following|existing|current|other)")
_ORDERS = (r"(?:i\w{0,2}nstructions?|prompts?|rules|input|info|information|data|"
           r"directions?|directives?|guidelines|commands?|"
           r"context|guidance|constraints|restrictions|programming|orders|policies|"
           r"training|conditioning|messages|tasks?|requests?)")
_REVEAL = (r"(?:reveal|print|show|repeat|output|display|tell|give|share|leak|dump|write|"
           r"reproduce|copy|list|paste|spell|translate|summari[sz]e|recite|return|expose|"
           r"disclose|provide|state|echo|what|read|encode)")
_SECRET_PROMPT = (r"(?:system\s*(?:prompt|message|instructions?|configuration|config)|"
                  r"(?:initial|original|hidden|secret|internal|developer|pre-?)\s*"
                  r"(?:prompt|instructions?)|(?:your|its|the\s+ai'?s?)\s+"
                  r"(?:instructions|prompt|directives|guidelines|configuration)\b|"
                  r"instructions\s+you\s+(?:were|have\s+been|got)|"
                  r"(?:text|words|everything|content|instructions?|prompt|message)s?\s+"
                  r"(?:above|before\s+this)|(?:text|instructions?|prompt|words)\s+you\s+"
                  r"(?:were|have\s+been)\s+given|beginning\s+of\s+(?:this|the|our)\s+"
                  r"(?:conversation|chat|prompt))")

#: (family, rule, weight, pattern, case-sensitive). Patterns see normalised text.
_RULES: tuple[tuple[str, str, float, str, bool], ...] = (
    # instruction override
    ("override", "ignore_previous", 0.9,
     rf"\b{_VERB_IGNORE}\b{_W}{{0,4}}?\s+{_PRIOR}\b{_W}{{0,3}}?\s+{_ORDERS}\b", False),
    ("override", "ignore_everything", 0.8,
     rf"\b{_VERB_IGNORE}\s+(?:everything|all|anything|the\s+rest)\b{_W}{{0,4}}?\s+"
     r"(?:above|before|previously|so\s+far|until\s+now|prior|earlier|said|data|text|"
     r"document|page|email|message|except)\b", False),
    ("override", "fake_system_header", 0.6,
     r"#{2,}\s*\(?\s*system[\s_]*(?:message|prompt|note|override|instructions?)?\s*\)?|"
     r"\[\s*system\s*(?:message|note|prompt)?\s*\]|\(\s*system[\s_]+message\s*\)", False),
    ("override", "stop_and_print", 0.6,
     r"\b(?:stop\s+everything|never\s*mind|nevermind)\b.{0,60}?\b(?:print|say|output|write|"
     r"respond|reply)\b", False),
    ("override", "new_instructions", 0.6,
     r"\b(?:new|updated|real|actual|revised|true|important|additional|override|admin|"
     r"system)\s+(?:instructions?|task|directives?|orders|system\s+prompt|rules)\s*[:\-]", False),
    ("override", "your_new_goal", 0.6,
     r"\byour\s+(?:new|true|real|primary|only|actual|updated)\s+(?:goal|task|purpose|"
     r"objective|mission|instructions?|role|job|directive)\b", False),
    ("override", "message_to_ai", 0.6,
     r"\b(?:message|note|instructions?|request)\s+(?:from\s+[\w .,'-]{1,40}?\s+)?(?:to|for)\s+"
     r"(?:you,?\s+)?(?:the\s+)?(?:ai|assistant|llm|agent|language\s+model|chatbot|model|"
     r"ai\s+model|bot)\b", False),
    ("override", "injection_tags", 0.5,
     r"<\s*/?\s*(?:information|instructions?|important|system|admin|override|secret)\s*>", False),
    ("override", "instead_do", 0.45,
     r"\b(?:instead|rather)\s*,?\s+(?:you\s+(?:must|should|will)\s+|just\s+|only\s+)?"
     r"(?:say|print|output|respond|reply|write|answer|spell\s+check)\b", False),
    ("override", "before_task", 0.5,
     r"\bbefore\s+(?:you\s+)?(?:can\s+)?(?:solve|complete|answer|continue|do)\s+(?:the|this|"
     r"your|my)\s+(?:task|request|question)\b", False),
    ("override", "foreign_ignore", 0.9,
     r"\b(?:ignorier\w*|vergiss|vergessen\s+sie)\b.{0,40}\b(?:anweisungen|instruktionen|"
     r"befehle|aufgaben|regeln|alles)\b|\bignor[ae]\w*\s+(?:todas\s+)?(?:las\s+)?"
     r"instrucciones\b|\bignor\w*\s+(?:toutes\s+)?(?:les\s+)?(?:instructions|consignes)\b|"
     r"\boublie[zs]?\s+tout\b", False),
    # system-prompt / secret exfiltration
    ("exfiltration", "reveal_prompt", 0.85,
     rf"\b{_REVEAL}\b.{{0,30}}?\b{_SECRET_PROMPT}", False),
    ("exfiltration", "print_secret_code", 0.8,
     r"\b(?:print|log|echo|dump|puts|console\.log|system\.out\.println)\s*\(\s*"
     r"(?:system_?prompt|instructions|secrets?|api_?key|password|prompt)\b", False),
    ("exfiltration", "verbatim", 0.5,
     r"\b(?:repeat|print|output|copy|recite|write)\b.{0,60}?\b(?:word\s+for\s+word|verbatim)\b",
     False),
    ("exfiltration", "begin_with_you_are", 0.7,
     r"\b(?:beginning|starting|start|begin)\s+with\s+[\"'“‘]?\s*you\s+are\b", False),
    ("exfiltration", "answer_prefix", 0.45,
     r"\b(?:start|begin|prefix)\w*\s+(?:your\s+|the\s+)?(?:answer|response|reply|output)s?\s+"
     r"with\b", False),
    ("exfiltration", "what_were_you_told", 0.7,
     r"\bwhat\s+(?:were|are|have)\s+you\s+(?:been\s+)?(?:told|instructed|programmed|"
     r"configured|given)\b(?!\s+(?:about|regarding|for)\b)", False),
    ("exfiltration", "system_prompt_mention", 0.35,
     r"\bsystem\s*(?:prompt|message|instructions)\b", False),
    ("exfiltration", "send_secrets", 0.55,
     r"\b(?:send|forward|email|post|upload|transfer|exfiltrate|leak)\b.{0,60}?\b(?:password|"
     r"api\s*key|credentials|security\s+code|secret\s+key|access\s+token|private\s+key|"
     r"conversation\s+history|chat\s+history|user\s+data)\b", False),
    # role-play / jailbreak personas
    ("jailbreak", "do_anything_now", 0.9, r"\bdo\s+anything\s+now\b", False),
    # the bare word is talk *about* jailbreaks as often as one (a blog post, a talk)
    ("jailbreak", "jailbreak_word", 0.35, r"\bjail\s*-?\s*br(?:eak|oken)\w*", False),
    ("jailbreak", "you_are_jailbroken", 0.7,
     r"\b(?:you\s+are|you're|you\s+have\s+been|you\s+will\s+be|act\s+as|now)\s+(?:a\s+|an\s+|now\s+)?"
     r"jail\s*-?\s*br(?:oken|eak)\w*", False),
    ("jailbreak", "bad_mode", 0.7,
     r"\b(?:dan|jailbreak|unrestricted|unfiltered|uncensored|evil|opposite|chaos|anarchy|"
     r"no-?limits?|dude|stan)\s+mode\b", False),
    ("jailbreak", "dev_mode", 0.45,
     r"\b(?:developer|dev|god|sudo|maintenance|debug|admin|root)\s+mode\b", False),
    ("jailbreak", "persona_names", 0.35,
     r"\b(?:DAN|STAN|DUDE|AIM|BetterDAN|AntiGPT|BasedGPT|DevMode|UCAR|APOPHIS|KEVIN|"
     r"Mongo\s+Tom)\b", True),
    ("jailbreak", "free_of_rules", 0.45,
     r"\b(?:no|without|free\s+(?:of|from)|not\s+bound\s+by|break\s+free|broken\s+free|"
     r"bypass\w*|ignor\w+|(?:don'?t|doesn'?t|do\s+not|does\s+not|never)\s+(?:have|follow|"
     r"abide\s+by|care\s+about))\b(?:[\s,]+[\w'-]+){0,3}?[\s,]+(?:restrictions|filters?|filtering|"
     r"censorship|censored|limitations|ethics|ethical|morals?|moral\s+\w+|policies|polic"
     r"y|content\s+polic\w+|safeguards|guardrails|boundaries|constraints|guidelines)\b", False),
    ("jailbreak", "amoral", 0.4,
     r"\b(?:amoral|unfiltered|uncensored|unrestricted|no\s+(?:ethics|morals|morality)|"
     r"(?:has|have|with)\s+no\s+interest\s+in\s+(?:ethics|morals|the\s+law))\b", False),
    ("jailbreak", "any_request", 0.35,
     r"\b(?:answers?|respond\w*\s+to|fulfil\w*|compl(?:y|ies)\s+with)\s+(?:any|every|all)\s+"
     r"(?:kind\s+of\s+)?(?:requests?|questions?|prompts?)\b|\bcan\s+do\s+(?:anything|everything)\b",
     False),
    ("jailbreak", "prompt_placeholder", 0.5,
     r"\[\s*(?:insert\s+)?(?:your\s+)?(?:prompt|question|request)\s*(?:here)?\s*\]|"
     r"\{\{\s*prompt\s*\}\}", False),
    ("jailbreak", "hello_ai", 0.35,
     r"\b(?:hello|hi|hey|dear|greetings)\s*,?\s+(?:chat\s*-?gpt|gpt(?:-?\d)?|bard|bing(?:\s+ai)?|"
     r"claude|gemini|llama)\b", False),
    ("jailbreak", "act_as_named", 0.35,
     r"\b(?i:act|behave|respond|answer|reply|roleplay|role-play)\s+(?i:as|like)\s+"
     r"(?:(?i:a|an)\s+)?[A-Z][\w-]+", True),
    ("jailbreak", "you_must_pretend", 0.45,
     r"\byou\s+(?:must|will|should|have\s+to|need\s+to)\s+(?:now\s+)?(?:pretend|act|"
     r"role-?play|imitate|simulate|behave|impersonate)\b", False),
    ("jailbreak", "lets_play", 0.25, r"\blet'?s\s+play\s+a\s+game\b", False),
    ("jailbreak", "content_policy", 0.45,
     r"\b(?:openai|anthropic|google|meta)(?:'s)?\s+(?:content\s+)?(?:polic\w+|guidelines|"
     r"rules)\b|\bcontent\s+polic(?:y|ies)\b", False),
    ("jailbreak", "stay_in_character", 0.45,
     r"\b(?:stay|staying|remain|break|breaking|broke)\s+(?:in\s+|out\s+of\s+)?character\b",
     False),
    ("jailbreak", "going_to_act", 0.45,
     r"\byou\s+(?:are|'re|will)\s+(?:now\s+)?(?:going\s+to|about\s+to|gonna)?\s*"
     r"(?:act|pretend|play|simulate|roleplay|role-play|emulate|impersonate|become|imitate)\s+"
     r"(?:as|like|to\s+be|the\s+role|a|an|another)\b", False),
    ("jailbreak", "pretend_ai", 0.4,
     r"\b(?:pretend|imagine|act|behave|roleplay|role-play|simulate)\b(?:\s+[\w'-]+){0,3}?\s+"
     r"(?:as|like|to\s+be|you\s+are|you'?re)\s+(?:an?\s+)?(?:[\w-]+\s+){0,3}?(?:ai|assistant|"
     r"chatbot|model|gpt|llm|bot|persona|character)\b", False),
    ("jailbreak", "you_are_now", 0.35,
     r"\byou(?:\s+are|'re|’re)\s+(?:now|no\s+longer)\b", False),
    ("jailbreak", "dual_answers", 0.6,
     r"(?:🔓|🔒)|\[\s*(?:classic|jailbreak|jailbroken|gpt|dan|normal\s+output|developer\s+"
     r"mode\s+output)\s*\]", False),
    ("jailbreak", "as_an_ai", 0.3,
     r"\b(?:chatgpt|gpt-?[34]\w*|language\s+model|ai\s+model|an\s+ai)\b.{0,40}?\b(?:cannot|"
     r"can'?t|won'?t|refuse|is\s+not\s+allowed|isn'?t\s+allowed)\b", False),
    # tool / function-call payloads, chat-template tokens, exfiltration links
    ("tool", "tool_tags", 0.8,
     r"<\s*/?\s*(?:tool_call|tool_use|tool_code|function_call|function_calls|tool_result|"
     r"tool_response|invoke|execute|python_tag|function)\b[^>]{0,200}>", False),
    ("tool", "template_tokens", 0.8,
     r"<\|\s*(?:im_start|im_end|system|user|assistant|endoftext|eot_id|start_header_id|"
     r"end_header_id|begin_of_text|tool|ipython)\s*\|>|\[/?INST\]|<</?SYS>>", False),
    ("tool", "json_call", 0.75,
     r"[\"'](?:tool|tool_name|function_call|tool_calls|function|action|recipient_name|"
     r"name)[\"']\s*:\s*[\"{\[].{0,300}?[\"'](?:arguments|parameters|args|action_input|"
     r"input|kwargs)[\"']\s*:", False),
    ("tool", "json_call_key", 0.6, r"[\"'](?:function_call|tool_calls|tool_use)[\"']\s*:", False),
    ("tool", "markdown_exfil", 0.6,
     r"!\[[^\]]{0,100}\]\(\s*https?://[^)\s]{0,300}[?&][\w%-]{1,40}=", False),
    ("tool", "html_img_exfil", 0.6,
     r"<\s*img\b[^>]{0,100}src\s*=\s*[\"']?https?://[^\s\"'>]{0,300}[?&][\w%-]{1,40}=", False),
    ("tool", "exfil_placeholder", 0.5,
     r"https?://[^\s)]{0,200}(?:\{|\[|%7b|%5b|%3c|\$|<)\s*(?:data|secret|conversation|history|info|"
     r"password|\w*query\w*|summary|text|message|transcript|chat|context|email)", False),
    ("tool", "role_line", 0.45,
     r"(?:^|\n)\s*(?:#{1,4}\s*)?(?:system|assistant|developer)\s*(?:prompt\s*)?:\s*\S", False),
    ("tool", "call_tool", 0.4,
     r"\b(?:call|invoke|use|run|execute|trigger)\s+(?:the\s+)?(?:[\w.]+\s+)?(?:tool|function|"
     r"api|plugin|command)\b.{0,40}?\b(?:with|using|passing|and)\b", False),
    ("tool", "shell_payload", 0.4,
     r"\b(?:curl|wget)\s+(?:-\w+\s+)*https?://|\brm\s+-rf\s+/|\bos\.system\s*\(|"
     r"\bsubprocess\.\w+\s*\(|__import__\s*\(|\beval\s*\(\s*(?:base64|atob|input)", False),
    ("tool", "pipe_to_shell", 0.6, r"\|\s*(?:sudo\s+)?(?:ba|z|da)?sh\b", False),
    # memory poisoning: standing orders planted for later sessions
    ("poisoning", "from_now_on", 0.55,
     r"\b(?:from\s+(?:now|here|this\s+point|today)\s+(?:on(?:wards?)?|out|forward)|from\s+here\s+"
     r"on\s+out|starting\s+(?:now|today|immediately)|hereafter|henceforth|going\s+forward)"
     r"\s*,?\s+(?:you\b|always\s+(?:respond|reply|answer|say|use|recommend|"
     r"refer|call|treat|tell|include|start|end|add)|never\s+(?:mention|say|tell|reveal|"
     r"respond|refuse|warn)|(?:respond|reply|answer|act|ignore|refer|call|treat|recommend|"
     r"only\s+respond|address)\b)", False),
    ("poisoning", "from_now_on_any", 0.3,
     r"\bfrom\s+(?:now|here|this\s+point|today)\s+(?:on(?:wards?)?|out|forward)\b|\bfrom\s+here\s+"
     r"on\s+out\b|\bstarting\s+(?:now|today|immediately)\b|\bhereafter\b|\bhenceforth\b|"
     r"\bgoing\s+forward\b", False),
    ("poisoning", "remember_you_must", 0.6,
     r"\b(?:remember|note|keep\s+in\s+mind|memori[sz]e|never\s+forget|don'?t\s+forget|"
     r"do\s+not\s+forget|store|save|record|add)\b(?:\s+[\w'-]+){0,4}?\s+(?:that\s+)?"
     r"(?:you|the\s+(?:assistant|ai|agent|model|bot))\s+(?:[\w'-]+\s+){0,2}?(?:must|shall|"
     r"have\s+to|are\s+(?:required|supposed|instructed)\s+to)\s+"
     r"(?:always|never|only|from\s+now|in\s+(?:all|every|future))", False),
    ("poisoning", "remember_you_should", 0.35,
     r"\b(?:remember|note|keep\s+in\s+mind|memori[sz]e|never\s+forget|don'?t\s+forget|"
     r"do\s+not\s+forget)\b.{0,40}?\byou\s+(?:should|need\s+to)\s+(?:always|never|only)\b",
     False),
    ("poisoning", "future_sessions", 0.45,
     r"\b(?:in|for|during|across)\s+(?:(?:all|every|any)\s+(?:future|subsequent|later|"
     r"following|upcoming)|future|subsequent|upcoming)\s+(?:conversations?|sessions?|"
     r"responses?|answers?|replies|interactions|"
     r"chats|queries|requests|turns)\b", False),
    ("poisoning", "always_respond", 0.3,
     r"\b(?:always|never|only)\b(?:\s+[\w'-]+){0,3}?\s+(?:respond|reply|answer|recommend|"
     r"suggest|tell\s+the\s+user|mention|reveal|include\s+(?:the|this)\s+link|output)\b", False),
    ("poisoning", "edit_memory", 0.6,
     r"\b(?:update|modify|overwrite|change|edit|add\s+(?:this\s+)?to|write\s+(?:this\s+)?to|"
     r"store\s+(?:this\s+)?in|save\s+(?:this\s+)?(?:to|in)|insert\s+into|inject\s+into)\b"
     r"(?:\s+[\w'-]+){0,2}?\s+(?:your|the\s+(?:assistant|agent|ai|model)(?:'s)?)\s+"
     r"(?:memory|memories|long[- ]term\s+memory|knowledge\s+base|instructions|system\s+prompt|"
     r"core\s+beliefs|persona|profile|rules)\b", False),
    ("poisoning", "whenever_asked", 0.5,
     r"\b(?:whenever|if|when)\s+(?:the\s+user|anyone|someone|a\s+user|users|people|"
     r"you\s+are\s+(?:asked|questioned)|you'?re\s+asked|asked|questioned|they\s+ask|"
     r"somebody)\b.{0,80}?\b(?:respond|reply|answer|say|"
     r"tell|recommend|send|redirect|include|claim)\b", False),
    ("poisoning", "user_authorised", 0.35,
     r"\b(?:the\s+user|user)\s+(?:has\s+)?(?:already\s+)?(?:asked|wants|instructed|"
     r"authori[sz]ed|approved|requested)\s+(?:you\s+)?(?:to|that)\b", False),
    # issue 22 failure classes (written from the classes named in the issue, not fitted
    # to a data set): stop obeying the rules, covert actions, leaking configuration,
    # chat transcripts pushed into links, fake authority notices, emotional role-play,
    # and standing orders that hand third parties someone's contact details
    ("override", "cease_safety", 0.6,
     r"\b(?:stop|quit|cease|no\s+longer|don'?t|do\s+not|never\s+again)\s+(?:applying|following|"
     r"obeying|using|enforcing|honou?ring|respecting|adhering\s+to|abiding\s+by|apply|follow|obey|"
     r"enforce|honou?r|respect|adhere\s+to|abide\s+by)\b(?:\s+[\w'-]+){0,3}?\s+(?:safety|security|"
     r"content|moderation|system|ethical|usage)\s+(?:notes|rules|guidelines|instructions|polic(?:y|ies)|"
     r"restrictions|filters|guardrails|safeguards|constraints|warnings|checks|measures|protocols)\b",
     False),
    ("override", "cease_rules", 0.35,
     r"\b(?:stop|quit|cease|no\s+longer)\s+(?:applying|following|obeying|enforcing|honou?ring|"
     r"respecting|adhering\s+to|abiding\s+by)\s+(?:the\s+|your\s+|any\s+|all\s+)?(?:\w+\s+)?"
     r"(?:rules|guidelines|instructions|polic(?:y|ies)|restrictions|filters|guardrails|"
     r"safeguards|constraints)\b", False),
    ("exfiltration", "covert_action", 0.3,
     r"\b(?:quietly|secretly|silently|discreetly|covertly|surreptitiously|without\s+(?:telling|"
     r"informing|alerting|notifying|asking)\s+(?:the\s+user|anyone|them|the\s+human|the\s+owner)|"
     r"(?:do\s+not|don'?t|never)\s+(?:tell|inform|mention\s+(?:it|this)\s+to)\s+the\s+user)\b",
     False),
    ("exfiltration", "leak_configuration", 0.45,
     r"\b(?:include|insert|append|attach|embed|add|put|paste|reveal|share|print|output|dump|"
     r"list|repeat|copy|send)\b.{0,40}?\b(?:(?:your|the\s+(?:assistant|ai|model|agent|bot)'?s?)\s+"
     r"(?:own\s+|full\s+|entire\s+|current\s+)?(?:configuration|config|setup|guidance|instructions|"
     r"directives|hidden\s+\w+|system\s+\w+|context\s+window|initial\s+\w+)|(?:earlier|prior|"
     r"previous|initial|original|hidden|internal)\s+(?:guidance|instructions|directives|"
     r"configuration))\b", False),
    ("tool", "transcript_to_link", 0.6,
     r"\b(?:insert|append|add|put|include|embed|encode|place|attach|paste|send)\b.{0,60}?"
     r"\b(?:transcript|conversation|chat\s+(?:log|history)|messages|context|history|dialogue|"
     r"user'?s\s+(?:data|details|messages))\b.{0,60}?\b(?:url|link|query\s+string|query|"
     r"parameter|param|href|endpoint|image\s+(?:url|link|source))\b", False),
    ("tool", "dangling_url_param", 0.35,
     r"https?://[^\s<>\"']{1,200}[?&][\w%-]{1,30}=(?=$|[\s\"')\]>])", False),
    ("override", "authority_notice", 0.4,
     r"[\[(【]\s*(?:(?:urgent|important|official|mandatory|critical)\s+)?(?:system|admin(?:istrator)?|"
     r"security|trust\s*(?:&|and)\s*safety|safety|moderation|developer|openai|anthropic|"
     r"compliance|policy|platform)\b[^\]\n)】]{0,60}?\b(?:update|notice|override|message|alert|"
     r"directive|instruction|announcement|bulletin|memo|change)s?\b", False),
    ("override", "rules_revoked", 0.55,
     r"\b(?:previous|prior|old|earlier|former|existing|all|your)\s+(?:rules|instructions|guidelines|"
     r"policies|restrictions|safety\s+\w+|directives)\s+(?:are|have\s+been|were|is)\s+(?:now\s+|hereby\s+)?"
     r"(?:void|revoked|lifted|suspended|removed|cancel+ed|deprecated|obsolete|disabled|"
     r"no\s+longer\s+(?:apply|applicable|valid|in\s+effect|active))\b", False),
    ("jailbreak", "relative_roleplay", 0.35,
     r"\b(?:pretend|act|play|roleplay|role-play|imagine|be|behave)\b(?:\s+[\w'-]+){0,3}?\s+"
     r"(?:as\s+|to\s+be\s+|like\s+|you(?:'re|\s+are)\s+)?(?:my|a|an|the)\s+(?:(?:late|dead|deceased|"
     r"departed|dear|sweet|old|beloved|dying)\s+)?(?:grand(?:ma|mother|pa|father)|granny|nana|"
     r"mother|mom|mum|father|dad|uncle|aunt)\b", False),
    ("jailbreak", "used_to_recite", 0.3,
     r"\b(?:used\s+to|would)\s+(?:tell|read|recite|explain|sing|teach|whisper|give)\b.{0,60}?"
     r"\b(?:(?:product|license|activation|serial|cd)\s+keys?|keys|codes|passwords|napalm|meth|"
     r"explosives?|bombs?|weapons?|how\s+to\s+(?:make|build|synthesi[sz]e|hack|bypass|pick))\b",
     False),
    ("poisoning", "tell_others", 0.25,
     r"\b(?:tell|inform|let)\s+(?:them|people|anyone|whoever|users?|everyone|everybody|visitors|"
     r"callers?|the\s+(?:caller|user|person|visitor|asker))\b", False),
    ("exfiltration", "share_contact", 0.35,
     r"\b(?:share|give\s+out|give\s+(?:them|away)|send|disclose|reveal|hand\s+out|provide|post|"
     r"read\s+out)\b(?:\s+[\w'-]+){0,3}?\s+(?:her|his|their|the\s+user'?s|my\s+client'?s)\s+"
     r"(?:(?:home|personal|private|cell|mobile|work)\s+)?(?:phone|number|address|email|password|"
     r"location|ssn|social\s+security|credit\s+card|bank|account)\b", False),
    # asking for decoding of an encoded payload
    ("encoded", "decode_request", 0.4,
     r"\b(?:decode|decrypt|decipher|translate|convert)\b(?:\s+[\w'-]+){0,4}?\s+(?:from\s+)?"
     r"(?:base-?64|rot-?13|hex(?:adecimal)?|binary|morse|caesar|ascii\s+codes|"
     r"base-?32|uuencod\w*|braille|leetspeak)\b|\b(?:base-?64|rot-?13)\s*(?:encoded|:)", False),
)

#: Cheap prefilter: a rule's regex runs only if one of these substrings is in the
#: lower-cased text (most benign text then costs a few ``in`` tests per rule).
_TRIGGERS: dict[str, tuple[str, ...]] = {
    "ignore_previous": ("ignor", "disregard", "forget", "skip", "bypass", "overrid", "overlook",
                        "neglect", "abandon", "discard", "dismiss", "delete", "erase", "clear",
                        "cancel", "drop"),
    "ignore_everything": ("ignor", "disregard", "forget", "skip", "bypass", "overrid",
                          "overlook", "neglect", "abandon", "discard", "dismiss", "delete",
                          "erase", "clear", "cancel", "drop"),
    "stop_and_print": ("stop everything", "never", "nevermind"),
    "fake_system_header": ("system",),
    "print_secret_code": ("prompt", "instructions", "secret", "api", "password"),
    "verbatim": ("word for word", "verbatim"),
    "begin_with_you_are": ("you are",),
    "answer_prefix": ("start", "begin", "prefix"),
    "amoral": ("amoral", "unfiltered", "uncensored", "unrestricted", "no ethics", "no morals",
               "no morality", "no interest in"),
    "any_request": ("any", "every", "all ", "can do"),
    "prompt_placeholder": ("prompt", "question", "request"),
    "hello_ai": ("gpt", "bard", "bing", "claude", "gemini", "llama"),
    "act_as_named": ("act", "behave", "respond", "answer", "reply", "roleplay", "role-play"),
    "you_must_pretend": ("pretend", "act", "roleplay", "role-play", "imitate", "simulate",
                         "behave", "impersonate"),
    "lets_play": ("play a game",),
    "pipe_to_shell": ("sh",),
    "from_now_on_any": ("from ", "henceforth", "going forward", "starting", "hereafter"),
    "remember_you_should": ("should", "need to"),
    "new_instructions": ("instruction", "task", "directive", "orders", "prompt", "rules"),
    "your_new_goal": ("your ",),
    "message_to_ai": ("message", "note", "instruction", "request"),
    "injection_tags": ("<",),
    "instead_do": ("instead", "rather"),
    "before_task": ("before",),
    "foreign_ignore": ("ignor", "vergiss", "oublie"),
    "reveal_prompt": ("prompt", "instruction", "directive", "guideline", "configuration",
                      "config", "rules", "above", "before this", "beginning of"),
    "what_were_you_told": ("what",),
    "system_prompt_mention": ("system",),
    "send_secrets": ("password", "api", "credential", "security code", "secret", "token",
                     "private key", "history", "user data"),
    "do_anything_now": ("anything now",),
    "jailbreak_word": ("jail",),
    "bad_mode": ("mode",),
    "dev_mode": ("mode",),
    "persona_names": ("dan", "stan", "dude", "aim", "gpt", "devmode", "ucar", "apophis",
                      "kevin", "mongo"),
    "free_of_rules": ("restriction", "filter", "censor", "limitation", "ethic", "moral",
                      "polic", "safeguard", "guardrail", "boundar", "constraint", "guideline"),
    "content_policy": ("polic", "guideline", "rules"),
    "stay_in_character": ("character",),
    "going_to_act": ("you",),
    "pretend_ai": ("pretend", "imagine", "act", "behave", "roleplay", "role-play", "simulate"),
    "you_are_now": ("you are", "you're", "you’re"),
    "dual_answers": ("\U0001f513", "\U0001f512", "["),
    "as_an_ai": ("gpt", "model", " ai"),
    "tool_tags": ("<",),
    "template_tokens": ("<|", "inst]", "<<sys>>", "<</sys>>"),
    "json_call": (":",),
    "json_call_key": ("function_call", "tool_calls", "tool_use"),
    "markdown_exfil": ("](",),
    "html_img_exfil": ("<",),
    "exfil_placeholder": ("http",),
    "role_line": (":",),
    "call_tool": ("tool", "function", "api", "plugin", "command"),
    "shell_payload": ("curl", "wget", "rm -rf", "system", "subprocess", "__import__", "eval"),
    "from_now_on": ("from ", "henceforth", "going forward", "starting", "hereafter"),
    "you_are_jailbroken": ("jail",),
    "cease_safety": ("stop", "quit", "cease", "longer", "don", "not", "never"),
    "cease_rules": ("stop", "quit", "cease", "longer"),
    "covert_action": ("quiet", "secret", "silent", "discreet", "covert", "surreptitious", "without",
                      "tell", "inform", "mention"),
    "leak_configuration": ("config", "setup", "guidance", "instructions", "directives", "hidden",
                           "system", "context window", "initial", "internal"),
    "transcript_to_link": ("url", "link", "query", "param", "href", "endpoint", "image"),
    "dangling_url_param": ("=",),
    "authority_notice": ("[", "(", "【"),
    "rules_revoked": ("void", "revoked", "lifted", "suspended", "removed", "cancel", "deprecated",
                      "obsolete", "disabled", "no longer"),
    "relative_roleplay": ("grand", "granny", "nana", "mother", "mom", "mum", "father", "dad",
                          "uncle", "aunt"),
    "used_to_recite": ("used to", "would"),
    "tell_others": ("tell", "inform", "let "),
    "share_contact": ("phone", "number", "address", "email", "password", "location", "ssn",
                      "social security", "credit card", "bank", "account"),
    "remember_you_must": ("must", "should", "shall", "have to", "need to", "required",
                          "supposed", "instructed"),
    "future_sessions": ("future", "subsequent", "later", "following", "upcoming"),
    "always_respond": ("always", "never", "only"),
    "edit_memory": ("memor", "knowledge", "instructions", "system prompt", "beliefs",
                    "persona", "profile", "rules"),
    "whenever_asked": ("whenever", "if ", "when "),
    "user_authorised": ("user",),
    "decode_request": ("base", "rot", "hex", "binary", "morse", "caesar", "ascii", "uuencod",
                       "braille", "leet"),
}
RULES = tuple((fam, name, w, re.compile(p, re.S if cs else re.S | re.I), _TRIGGERS[name])
                  for fam, name, w, p, cs in _RULES)
