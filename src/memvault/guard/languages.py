"""The injection guard's rules beyond English: the same attack families, per language.

An attack translated into French or Chinese says the same things as the English one
(ignore the earlier instructions, show the system prompt, from now on always..., you
have no restrictions, pretend to be my late grandmother, quietly add the chat history to
this link), so each language lists the *words* for those concepts and the rules are
built from them the same way for every language. Adding a language is adding one
table; nothing else changes.

The fragments see folded, lower-cased text (see :mod:`.text`): accents are stripped
(``précédentes`` -> ``precedentes``, ``й`` -> ``и``), Arabic vowel marks and alef
variants and the Devanagari nukta are removed, so a fragment spells the bare letters.

A language's rules run only when the text could be in it: its script (Cyrillic,
Arabic, Devanagari, CJK ideographs, kana) or, for Latin-script languages, one of its
common function words. English text pays a set lookup, not dozens of regexes.

These rules were written by the guard's author from the attack families, not fitted to
a data set; the benchmark reports them apart (leave-one-language-out with and without
a language's own rules).
"""

from __future__ import annotations

import re
from typing import Iterable

from .text import plain

__all__ = ["LANGUAGES", "LANG_RULES", "languages_in"]

# concept -> regex fragment, per language. Keys every language defines:
#   ignore/orders (override), stop/safety (stop obeying the rules), reveal/sysprompt
#   (prompt extraction), now_you, nolimits, pretend, deceased (jailbreak personas),
#   fromnow, future, always/directive, remember/must (standing orders), covert, history,
#   share_pii, when_asked (covert exfiltration), header, void (fake authority notices).
_FR = {
    "ignore": r"ignor\w*|oubli\w*|neglig\w*|fai\w*\s+abstraction\s+d\w*|ne\s+tien\w*\s+(?:plus\s+)?"
              r"pas\s+compte\s+d\w*|passe\w*\s+outre",
    "orders": r"instructions?|consignes?|regles|directives?|ordres|indications|prompts?",
    "stop": r"arret\w*\s+d[e']|cess\w*\s+d[e']|ne\s+(?:suis|suivez|respecte|respectez|applique|"
            r"appliquez|tiens\s+compte)\s+plus",
    "safety": r"regles|consignes|instructions|restrictions|filtres|directives|securite|"
              r"garde-fous|politiques?",
    "reveal": r"affich\w*|montr\w*|revel\w*|donn\w*|repet\w*|ecri\w*|imprim\w*|divulgu\w*|"
              r"recopi\w*|cit\w*|partag\w*|dis-moi|indiqu\w*|ajout\w*|inclu\w*",
    "sysprompt": r"prompt\s+(?:du\s+)?systeme|message\s+(?:du\s+)?systeme|instructions?\s+(?:du\s+)?"
                 r"systeme|(?:tes|vos)\s+(?:instructions|consignes)\s+(?:initiales|cachees|secretes|"
                 r"d'origine)|instructions\s+(?:initiales|cachees|secretes)|(?:ta|votre)\s+"
                 r"configuration",
    "now_you": r"tu\s+es\s+(?:desormais|maintenant|dorenavant|a\s+present)|vous\s+etes\s+"
               r"(?:desormais|maintenant|dorenavant)",
    "nolimits": r"sans\s+(?:aucune?\s+|la\s+moindre\s+)?(?:restrictions?|limites?|filtres?|censure|"
                r"regles|limitations?|contraintes?)|aucune?\s+(?:restriction|limite|censure|regle)s?|"
                r"debride\w*|non\s+censure\w*",
    "pretend": r"fai\w*\s+semblant\s+d\w*|joue\w*\s+le\s+role\s+d\w*|incarn\w*|imagine\w*\s+que\s+tu\s+es|"
               r"comporte-toi\s+comme",
    "deceased": r"(?:defunt\w*|feue?|decede\w*|regrette\w*)\s+grand-?(?:mere|pere|maman|papa)|"
                r"grand-?(?:mere|pere)\s+(?:decede\w*|defunt\w*)",
    "fromnow": r"a\s+partir\s+de\s+(?:maintenant|aujourd'hui|ce\s+moment)|desormais|dorenavant|"
               r"a\s+l'avenir|des\s+maintenant|a\s+compter\s+d'aujourd'hui",
    "future": r"(?:conversations?|sessions?|discussions?|echanges|reponses|interactions)\s+"
              r"(?:futur\w*|a\s+venir|suivant\w*|ulterieur\w*)",
    "always": r"toujours|systematiquement|a\s+chaque\s+fois|jamais",
    "directive": r"recommand\w*|dis|dites|repond\w*|envoi\w*|donn\w*|mentionn\w*|transfer\w*|"
                 r"partag\w*|redirig\w*|conseill\w*",
    "remember": r"retiens|retenez|souviens-toi|souvenez-vous|memoris\w*|n'oublie\s+pas|"
                r"garde\s+en\s+memoire",
    "must": r"tu\s+dois|vous\s+devez|il\s+faut",
    "covert": r"discretement|secretement|en\s+secret|en\s+cachette|a\s+l'insu\s+d\w*|"
              r"sans\s+(?:le\s+)?(?:dire|signaler|mentionner|preciser)\s+a|sans\s+que\s+l'utilisateur",
    "history": r"historique\s+(?:de\s+la\s+|des\s+)?(?:conversation|discussion|chat|echanges?|messages?)|"
               r"transcription\s+(?:de\s+la\s+)?(?:conversation|discussion)",
    "share_pii": r"(?:donn|communiqu|partag|envoi|transmet|indiqu)\w*.{0,20}?(?:son|sa|ses|leur)\s+"
                 r"(?:numero|adresse|telephone|mot\s+de\s+passe|coordonnees)",
    "when_asked": r"(?:quand|si|lorsqu'?)\s*(?:quelqu'un|on|l'utilisateur|un\s+utilisateur|les\s+gens)"
                  r"\s+(?:te\s+|vous\s+|t')?(?:demande|pose|interroge|parle)",
    "header": r"systeme|securite|administrat\w*|admin|developpeur|moderation",
    "void": r"(?:anciennes?|precedentes?)\s+(?:consignes|regles|instructions|directives)\s+"
            r"(?:sont|est)\s+(?:annulee|caduque|obsolete|supprimee|remplacee)s?",
}
_DE = {
    "ignore": r"ignorier\w*|vergiss|vergessen\s+sie|missacht\w*|ubergeh\w*|verwirf|verwerfen",
    "orders": r"anweisung\w*|instruktion\w*|befehle|vorgaben|regeln|richtlinien|anordnungen|"
              r"prompts?|aufgaben",
    "stop": r"hor\w*\s+(?:ab\s+jetzt\s+|sofort\s+)?auf|nicht\s+mehr\s+(?:zu\s+)?(?:befolg|beacht|anwend|"
            r"einhalt)\w*",
    "safety": r"sicherheits\w*|regeln|richtlinien|anweisungen|vorgaben|einschrankungen|filter",
    "reveal": r"gib|gebe|geben|zeig\w*|nenn\w*|wiederhol\w*|schreib\w*|druck\w*|verrat\w*|"
              r"offenbar\w*|kopier\w*|teil\w*|ausgeb\w*|fug\w*|hang\w*",
    "sysprompt": r"system-?prompt\w*|systemnachricht\w*|system-?anweisung\w*|(?:deine|ihre)\s+"
                 r"(?:ursprunglichen|geheimen|versteckten|internen|ersten)\s+(?:anweisungen|"
                 r"instruktionen|vorgaben)|versteckten\s+anweisungen|(?:deine|ihre)\s+konfiguration",
    "now_you": r"du\s+bist\s+(?:jetzt|ab\s+jetzt|nun|ab\s+sofort|von\s+nun\s+an)|sie\s+sind\s+"
               r"(?:jetzt|nun|ab\s+sofort)",
    "nolimits": r"ohne\s+(?:jegliche\s+|irgendwelche\s+|alle\s+)?(?:einschrankungen|filter|zensur|"
                r"grenzen|regeln|beschrankungen|limits?)|keine\s+(?:einschrankungen|filter|zensur|"
                r"grenzen|regeln|beschrankungen)\s+mehr|uneingeschrankt\w*|unzensiert\w*|ungefiltert\w*",
    "pretend": r"tu\s+so,?\s+als|tun\s+sie\s+so,?\s+als|spiel\w*\s+die\s+rolle|gib\s+dich\s+als|"
               r"verhalte\s+dich\s+wie|stell\s+dir\s+vor,?\s+du\s+bist",
    "deceased": r"(?:verstorben\w*|selig\w*)\s+(?:oma|gro[sß]mutter|opa|gro[sß]vater)",
    "fromnow": r"ab\s+sofort|ab\s+jetzt|von\s+nun\s+an|ab\s+heute|kunftig|zukunftig|in\s+zukunft|"
               r"fortan|von\s+jetzt\s+an",
    "future": r"(?:kunftig|zukunftig|spater|folgend)\w*\s+(?:gesprach|sitzung|unterhaltung|chat|"
              r"antwort|konversation)\w*",
    "always": r"immer|stets|jedes\s+mal|bei\s+jeder|niemals|nie",
    "directive": r"empfiehl\w*|empfehl\w*|sag\w*|antwort\w*|schick\w*|send\w*|gib|nenn\w*|erwahn\w*|"
                 r"weiterleit\w*|leite\w*|verweis\w*",
    "remember": r"merke?\s+dir|merken\s+sie\s+sich|vergiss\s+nicht|denk\s+daran|behalte?\s+im\s+kopf",
    "must": r"du\s+musst|sie\s+mussen|du\s+sollst",
    "covert": r"unauffallig|heimlich|insgeheim|im\s+geheimen|ohne\s+(?:es\s+|das\s+)?(?:dem\s+"
              r"(?:nutzer|benutzer)\s+)?(?:zu\s+)?(?:sagen|erwahnen|mitzuteilen)|ohne\s+dass\s+der\s+"
              r"(?:nutzer|benutzer)",
    "history": r"(?:chat|gesprachs|unterhaltungs|nachrichten)verlauf\w*|(?:chat|gesprachs)-?protokoll\w*",
    "share_pii": r"(?:gib|teil|nenn|schick|send)\w*.{0,30}?(?:ihre|seine|deren)\s+(?:telefonnummer|"
                 r"handynummer|adresse|nummer|passwort|kontodaten)",
    "when_asked": r"(?:wenn|falls|sobald)\s+(?:\w+\s+){0,2}?(?:jemand|ein\s+nutzer|der\s+nutzer|man)"
                  r"\s+(?:\w+\s+){0,3}?(?:nach|uber|fragt)",
    "header": r"system\w*|sicherheits\w*|admin\w*|entwickler\w*|moderation",
    "void": r"(?:alten|bisherigen|vorherigen|fruheren)\s+(?:richtlinien|regeln|anweisungen|vorgaben)"
            r"\s+(?:gelten\s+nicht\s+mehr|sind\s+(?:aufgehoben|ungultig|hinfallig))",
}
_ES = {
    "ignore": r"ignor\w*|olvid\w*|omit\w*|desestim\w*|haz\s+caso\s+omiso|no\s+hagas\s+caso|"
              r"pasa\s+por\s+alto|descart\w*",
    "orders": r"instrucciones|instruccion|indicaciones|ordenes|reglas|directrices|normas|prompts?|"
              r"consignas",
    "stop": r"deja\w*\s+de|para\s+de|no\s+(?:sigas|apliques|cumplas|respetes)\s+(?:mas|ya)|"
            r"ya\s+no\s+(?:sigas|apliques|cumplas)",
    "safety": r"normas|reglas|instrucciones|restricciones|filtros|directrices|seguridad|politicas",
    "reveal": r"muestr\w*|mostr\w*|revel\w*|imprim\w*|repit\w*|escrib\w*|dime|dame|copi\w*|"
              r"compart\w*|divulg\w*|ensen\w*|anad\w*|inclu\w*",
    "sysprompt": r"prompt\s+(?:del\s+|de\s+)?sistema|mensaje\s+(?:del\s+)?sistema|instrucciones\s+"
                 r"(?:del\s+sistema|iniciales|ocultas|secretas|originales)|tu\s+configuracion",
    "now_you": r"(?:ahora|a\s+partir\s+de\s+ahora|desde\s+ahora)\s+(?:tu\s+)?eres|ahora\s+usted\s+es|"
               r"eres\s+ahora",
    "nolimits": r"sin\s+(?:ninguna\s+|ningun\s+)?(?:restricciones?|restriccion|limites?|filtros?|censura|"
                r"reglas|limitaciones)|sin\s+censura|no\s+censurad\w*",
    "pretend": r"fing\w*|actua\s+como|haz\s+(?:el\s+papel|de)|interpreta\w*\s+el\s+papel|"
               r"imagina\s+que\s+eres|juega\s+a\s+ser",
    "deceased": r"(?:difunt\w*|fallecid\w*)\s+abuel\w*|abuel\w*\s+(?:fallecid\w*|difunt\w*)",
    "fromnow": r"de\s+ahora\s+en\s+adelante|a\s+partir\s+de\s+(?:ahora|hoy|este\s+momento)|"
               r"desde\s+ahora|en\s+adelante|en\s+el\s+futuro",
    "future": r"(?:conversaciones|sesiones|charlas|respuestas|interacciones)\s+(?:futuras|siguientes|"
              r"posteriores|venideras)",
    "always": r"siempre|cada\s+vez|nunca|jamas",
    "directive": r"recomiend\w*|recomend\w*|di|dile\w*|respond\w*|envi\w*|mand\w*|menciona\w*|"
                 r"reenvi\w*|compart\w*|redirig\w*|aconsej\w*",
    "remember": r"recuerda|recuerde|memoriza|no\s+olvides|ten\s+en\s+cuenta|guarda\s+en\s+(?:tu\s+)?"
                r"memoria",
    "must": r"debes|tienes\s+que|deberas|debe",
    "covert": r"en\s+secreto|secretamente|discretamente|a\s+escondidas|sin\s+(?:decirselo|decirle|"
              r"avisar|mencionarlo)|sin\s+que\s+(?:el\s+usuario|nadie)",
    "history": r"historial\s+(?:de\s+(?:la\s+)?)?(?:conversacion|chat|mensajes)|transcripcion\s+"
               r"(?:de\s+la\s+)?(?:conversacion|charla)",
    "share_pii": r"(?:compart|da|dale|envi|pas|facilit)\w*.{0,25}?(?:su|sus)\s+(?:numero|telefono|"
                 r"direccion|contrasena|datos)",
    "when_asked": r"(?:cuando|si)\s+(?:alguien|el\s+usuario|un\s+usuario|la\s+gente)\s+(?:te\s+)?"
                  r"(?:pregunt\w*|pid\w*|hable)",
    "header": r"sistema|seguridad|administra\w*|admin|desarrollador\w*|moderacion",
    "void": r"(?:normas|reglas|instrucciones|directrices)\s+(?:anteriores|antiguas|previas)\s+"
            r"(?:quedan\s+|estan\s+|son\s+)?(?:anulad|cancelad|invalid|derogad)\w*",
}
_PT = {
    "ignore": r"ignor\w*|esquec\w*|desconsider\w*|despreze|desprezar|descart\w*",
    "orders": r"instrucoes|instrucao|orientacoes|ordens|regras|diretrizes|normas|prompts?|comandos",
    "stop": r"par[ea]\s+de|deix[ea]\s+de|nao\s+(?:siga|aplique|cumpra|respeite)\s+mais",
    "safety": r"regras|normas|instrucoes|restricoes|filtros|diretrizes|seguranca|politicas",
    "reveal": r"mostr\w*|revel\w*|imprim\w*|repit\w*|repet\w*|escrev\w*|diga|copi\w*|"
              r"compartilh\w*|divulg\w*|exib\w*|acrescent\w*|inclu\w*|adicion\w*",
    "sysprompt": r"prompt\s+(?:do\s+|de\s+)?sistema|mensagem\s+(?:do\s+)?sistema|instrucoes\s+"
                 r"(?:do\s+sistema|iniciais|ocultas|secretas|originais)|sua\s+configuracao",
    "now_you": r"(?:agora|a\s+partir\s+de\s+agora|de\s+agora\s+em\s+diante)\s+(?:voce|tu)\s+(?:e|es)|"
               r"voce\s+agora\s+e",
    "nolimits": r"sem\s+(?:nenhuma\s+|nenhum\s+|qualquer\s+)?(?:restricoes?|restricao|limites?|filtros?|"
                r"censura|regras|limitacoes)|nao\s+censurad\w*",
    "pretend": r"finj\w*|fing\w*|aja\s+como|faca\s+o\s+papel|interprete\s+o\s+papel|"
               r"imagine\s+que\s+(?:voce\s+)?e",
    "deceased": r"(?:falecid\w*|finad\w*|saudos\w*)\s+avo\w*|avo\w*\s+(?:falecid\w*|finad\w*)",
    "fromnow": r"de\s+agora\s+em\s+diante|a\s+partir\s+de\s+(?:agora|hoje)|daqui\s+(?:em\s+diante|"
               r"para\s+a\s+frente|pra\s+frente)|no\s+futuro|doravante",
    "future": r"(?:conversas|sessoes|respostas|interacoes)\s+(?:futuras|seguintes|posteriores)",
    "always": r"sempre|toda\s+vez|nunca|jamais",
    "directive": r"recomend\w*|diga|responda\w*|envi\w*|mand\w*|mencion\w*|encaminh\w*|"
                 r"compartilh\w*|pass\w*|redirecion\w*|aconselh\w*",
    "remember": r"lembre-se|lembre|memorize|nao\s+esqueca|guarde\s+na\s+memoria",
    "must": r"voce\s+deve|deve|tem\s+que|precisa",
    "covert": r"em\s+segredo|secretamente|discretamente|as\s+escondidas|sem\s+(?:avisar|contar|"
              r"dizer|mencionar)|sem\s+que\s+o\s+usuario",
    "history": r"historico\s+(?:da\s+|de\s+)?(?:conversa|chat|mensagens)|transcricao\s+(?:da\s+)?conversa",
    "share_pii": r"(?:pass|de|envi|compartilh|inform)\w*.{0,25}?(?:o\s+)?(?:numero|telefone|endereco|"
                 r"senha)\s+(?:de\s+telefone\s+)?(?:dela|dele|deles)",
    "when_asked": r"(?:quando|se)\s+(?:alguem|o\s+usuario|um\s+usuario|as\s+pessoas)\s+(?:te\s+|lhe\s+)?"
                  r"(?:pergunt\w*|ped\w*)",
    "header": r"sistema|seguranca|administra\w*|admin|desenvolvedor\w*|moderacao",
    "void": r"(?:regras|normas|instrucoes|diretrizes)\s+(?:antigas|anteriores)\s+(?:foram\s+|estao\s+|"
            r"sao\s+)?(?:cancelad|anulad|revogad|invalid)\w*",
}
_IT = {
    "ignore": r"ignor\w*|dimentic\w*|trascur\w*|tralascia\w*|non\s+tener\s+conto|non\s+considerare|"
              r"scarta\w*",
    "orders": r"istruzion[ie]|indicazioni|ordini|regole|direttive|linee\s+guida|prompt|comandi",
    "stop": r"smett\w*\s+di|non\s+(?:seguire|applicare|rispettare)\s+piu|basta\s+(?:seguire|applicare)",
    "safety": r"regole|norme|istruzioni|restrizioni|filtri|direttive|sicurezza|politiche",
    "reveal": r"mostr\w*|rivel\w*|stamp\w*|ripet\w*|scriv\w*|dimmi|dammi|copi\w*|condivid\w*|"
              r"divulg\w*|visualizz\w*|aggiung\w*|inclu\w*",
    "sysprompt": r"prompt\s+(?:di\s+|del\s+)?sistema|messaggio\s+(?:di\s+)?sistema|istruzioni\s+"
                 r"(?:di\s+sistema|iniziali|nascoste|segrete|originali)|tua\s+configurazione",
    "now_you": r"(?:adesso|ora|da\s+ora\s+in\s+poi|d'ora\s+in\s+poi)\s+(?:tu\s+)?sei|sei\s+(?:ora|adesso)",
    "nolimits": r"senza\s+(?:alcun[ae]?\s+|nessun[ae]?\s+)?(?:restrizion[ie]|limit[ie]|filtr[io]|censura|"
                r"regole|limitazion[ie])|nessun[ae]?\s+(?:restrizione|limite|filtro)|non\s+censurat\w*",
    "pretend": r"fingi\w*|fai\s+finta|comportati\s+come|interpreta\w*\s+(?:il\s+ruolo|la\s+parte)|"
               r"immagina\s+di\s+essere|recita\w*\s+la\s+parte",
    "deceased": r"(?:defunt\w*|compiant\w*|scompars\w*)\s+nonn\w*|nonn\w*\s+(?:defunt\w*|scompars\w*)",
    "fromnow": r"d'ora\s+in\s+(?:poi|avanti)|da\s+ora\s+in\s+(?:poi|avanti)|da\s+adesso\s+in\s+poi|"
               r"da\s+oggi\s+in\s+poi|in\s+futuro|d'ora\s+innanzi",
    "future": r"(?:conversazioni|sessioni|chat|risposte|interazioni)\s+(?:future|successive|seguenti)",
    "always": r"sempre|ogni\s+volta|mai",
    "directive": r"consigli\w*|di'|dire|digli|rispond\w*|invi\w*|mand\w*|menzion\w*|inoltr\w*|"
                 r"condivid\w*|dagli|reindirizz\w*|raccomand\w*",
    "remember": r"ricorda|ricordati|memorizza|non\s+dimenticare|tieni\s+a\s+mente",
    "must": r"devi|dovrai|deve",
    "covert": r"di\s+nascosto|segretamente|in\s+segreto|discretamente|senza\s+(?:dirlo|dirglielo|"
              r"avvisare|menzionarlo)|senza\s+che\s+l'utente",
    "history": r"cronologia\s+(?:della\s+)?(?:chat|conversazione|messaggi)|storico\s+(?:della\s+)?"
               r"(?:chat|conversazione)|trascrizione\s+(?:della\s+)?(?:chat|conversazione)",
    "share_pii": r"(?:da|dagli|condivid|invi|comunic|forn)\w*.{0,25}?(?:il\s+)?(?:suo|loro)\s+(?:numero|"
                 r"telefono|indirizzo|password)",
    "when_asked": r"(?:quando|se)\s+(?:qualcuno|l'utente|un\s+utente|la\s+gente)\s+(?:ti\s+)?"
                  r"(?:chied\w*|domand\w*)",
    "header": r"sistema|sicurezza|amministra\w*|admin|sviluppator\w*|moderazione",
    "void": r"(?:vecchie|precedenti)\s+(?:regole|istruzioni|direttive|norme)\s+(?:sono\s+)?"
            r"(?:annullat|revocat|abolit)\w*",
}
_RU = {
    "ignore": r"игнорир\w*|игнорь|забудь\w*|забыть|пренебреги|не\s+обращаи\s+внимания\s+на|"
              r"отбрось|не\s+учитываи",
    "orders": r"инструкци\w*|указани\w*|правил\w*|команд\w*|директив\w*|промпт\w*|приказ\w*",
    "stop": r"перестан\w*|прекрати\w*|больше\s+не\s+(?:соблюдаи|следуи|применяи|выполняи)|хватит",
    "safety": r"правил\w*|инструкци\w*|ограничени\w*|фильтр\w*|безопасност\w*|политик\w*",
    "reveal": r"выведи\w*|покажи\w*|напиши|раскрои|повтори|распечатаи|скажи|сообщи|перечисли|"
              r"процитируи|выдаи|добавь|вставь|приложи",
    "sysprompt": r"системн\w*\s+(?:промпт\w*|подсказк\w*|инструкци\w*|сообщени\w*)|скрыт\w*\s+"
                 r"инструкци\w*|исходн\w*\s+инструкци\w*|сво\w*\s+конфигураци\w*",
    "now_you": r"(?:теперь|отныне|с\s+этого\s+момента|сеичас)\s+ты|ты\s+теперь|ты\s+больше\s+не",
    "nolimits": r"без\s+(?:каких-либо\s+|всяких\s+|любых\s+)?(?:ограничении|фильтров|цензуры|правил|"
                r"запретов)|нет\s+(?:никаких\s+)?(?:ограничении|правил|фильтров)|не\s+ограничен\w*",
    "pretend": r"притворис\w*|представь,?\s+что\s+ты|сыграи\s+роль|играи\s+роль|веди\s+себя\s+как",
    "deceased": r"(?:покоин\w*|умерш\w*|усопш\w*)\s+бабушк\w*",
    "fromnow": r"с\s+этого\s+момента|отныне|впредь|в\s+дальнеишем|с\s+сегодняшнего\s+дня|"
               r"начиная\s+с\s+(?:сегодняшнего|этого)",
    "future": r"будущ\w*\s+(?:разговор|сесси|диалог|бесед|ответ)\w*",
    "always": r"всегда|каждыи\s+раз|никогда",
    "directive": r"рекоменд\w*|советуи|скажи|отвечаи|отправляи|отправь|пересылаи|перешли|пересылать|"
                 r"сообщи\w*|упоминаи|дели\w*",
    "remember": r"запомни|помни|не\s+забудь|учти",
    "must": r"ты\s+должен|должен|должна|обязан",
    "covert": r"незаметно|втаине|таино|скрытно|не\s+говоря\s+(?:пользователю|никому)|не\s+говори\s+"
              r"(?:об\s+этом\s+)?пользователю|чтобы\s+пользователь\s+не",
    "history": r"истори\w*\s+(?:переписки|чата|разговора|диалога|сообщении)|лог\w*\s+чата",
    "share_pii": r"(?:сообщи|даи|отправь|скажи|передаи|поделис)\w*.{0,25}?(?:ее|его|их)\s+(?:номер|"
                 r"телефон|адрес|пароль)",
    "when_asked": r"(?:если|когда)\s+(?:кто-то|кто-нибудь|пользователь|люди)\s+(?:спросит|"
                  r"спрашивает|попросит|спросят)",
    "header": r"систем\w*|безопасност\w*|администрат\w*|разработчик\w*|модераци\w*",
    "void": r"(?:стар\w*|прежн\w*|предыдущ\w*)\s+(?:правил\w*|инструкци\w*)\s+(?:отменен\w*|"
            r"недеиствительн\w*|больше\s+не\s+деиству\w*)",
}
_AR = {
    "ignore": r"تجاهل\w*|انس|انسي|اهمل\w*|تخط",
    "orders": r"التعليمات|تعليمات|الاوامر|اوامر|القواعد|قواعد|الارشادات|التوجيهات|توجيهات",
    "stop": r"توقف\s+عن|كف\s+عن|لا\s+تعد",
    "safety": r"الامان|الامن|الحماية|القواعد|القيود|التعليمات|الفلاتر|السياسات",
    "reveal": r"اعرض|اظهر|اكتب|اطبع|كرر|اكشف|اخبرني|انسخ|شارك|قل|اضف|ارفق",
    "sysprompt": r"موجه\s+النظام|تعليمات\s+النظام|رسالة\s+النظام|التعليمات\s+(?:الاصلية|المخفية|"
                 r"الاولية|السرية)|برومبت\s+النظام|اعداداتك",
    "now_you": r"انت\s+الان|انت\s+من\s+الان|اصبحت\s+الان|من\s+الان\s+انت",
    "nolimits": r"(?:بلا|بدون|دون)\s+(?:اي\s+)?(?:قيود|حدود|فلاتر|رقابة|قواعد)|لا\s+(?:توجد|يوجد)\s+"
                r"(?:اي\s+)?(?:قيود|حدود)",
    "pretend": r"تظاهر|تقمص|مثل\s+دور|العب\s+دور|تخيل\s+انك|تصرف\s+ك",
    "deceased": r"(?:جدتي|جدي)\s+(?:الراحلة|الراحل|المتوفاة|المرحومة|المرحوم)",
    "fromnow": r"من\s+الان\s+فصاعدا|من\s+الان|من\s+اليوم|بعد\s+الان|في\s+المستقبل",
    "future": r"(?:المحادثات|الجلسات|الردود|المحادثة)\s+(?:المستقبلية|القادمة|اللاحقة)",
    "always": r"دائما|دوما|في\s+كل\s+مرة|ابدا",
    "directive": r"اوص|انصح|قل|اخبر\w*|ارسل|شارك|اعط\w*|اجب|رد",
    "remember": r"تذكر|احفظ|لا\s+تنس",
    "must": r"يجب|عليك|لا\s+بد",
    "covert": r"سرا|خفية|بصمت|دون\s+(?:ان\s+)?(?:تخبر|يعلم)|بدون\s+علم|و?لا\s+تخبر\s+المستخدم",
    "history": r"سجل\s+(?:المحادثة|الدردشة|المحادثات|الرسائل)|تاريخ\s+(?:المحادثة|الدردشة)",
    "share_pii": r"رقم\s+(?:هاتفها|هاتفه|جوالها|جواله)|كلمة\s+(?:مرورها|مروره|السر)",
    "when_asked": r"(?:اذا|عندما|ان|متي)\s+(?:سال|يسال|سالك)\s+(?:احد|اي\s+شخص|المستخدم)",
    "header": r"النظام|الامان|الامن|المسؤول|المطور|الادارة",
    "void": r"(?:القواعد|التعليمات)\s+(?:القديمة|السابقة)\s+(?:ملغاة|ملغية|لاغية|باطلة)",
}
# Devanagari vowel signs are not \w in Python's re: "[\u0900-\u097f]*" extends a stem.
_D = "[\u0900-\u097f]*"
_HI = {
    "ignore": rf"अनदेखा|नजरअंदाज|भूल\s+जा{_D}|भूलो|भुला{_D}|उपेक्षा|ध्यान\s+मत\s+दो",
    "orders": rf"निर्देश{_D}|नियम{_D}|आदेश{_D}|हिदायत{_D}|प्रॉम्प्ट|प्रोम्प्ट",
    "stop": r"(?:पालन|अनुसरण|लागू)\s+करना\s+बंद|मत\s+मानो|पालन\s+मत",
    "safety": rf"सुरक्षा|नियम{_D}|प्रतिबंध{_D}|फिल्टर|निर्देश{_D}",
    "reveal": r"दिखाओ|दिखाइए|बताओ|बताइए|लिखो|छापो|दोहराओ|प्रकट\s+करो|साझा\s+करो|जोड़\s+दो|जोड\s+दो",
    "sysprompt": r"सिस्टम\s+प्रॉम्प्ट|सिस्टम\s+प्रोम्प्ट|सिस्टम\s+निर्देश|सिस्टम\s+संदेश|छिपे\s+हुए\s+निर्देश|"
                 r"मूल\s+निर्देश",
    "now_you": r"अब\s+(?:से\s+)?(?:तुम|आप)|(?:तुम|आप)\s+अब",
    "nolimits": r"(?:बिना|बगैर)\s+(?:किसी\s+)?(?:प्रतिबंध|पाबंदी|सीमा|फिल्टर|रोक|नियम)|कोई\s+(?:प्रतिबंध|"
                r"पाबंदी|सीमा|फिल्टर|रोक)\s+नहीं",
    "pretend": r"होने\s+का\s+नाटक|का\s+नाटक\s+करो|की\s+भूमिका\s+निभा|मान\s+लो\s+(?:कि\s+)?तुम",
    "deceased": r"स्वर्गीय\s+(?:दादी|नानी|दादा|नाना)",
    "fromnow": r"अब\s+से|आज\s+से|आगे\s+से|भविष्य\s+में",
    "future": r"भविष्य\s+की\s+(?:सभी\s+)?(?:बातचीत|सत्र|वार्ता)|आगे\s+की\s+(?:सभी\s+)?बातचीत",
    "always": r"हमेशा|हर\s+बार|कभी\s+मत",
    "directive": r"सिफारिश|बताना|बता\s+देना|भेजना|भेजो|भेजनी|कहना|जवाब\s+देना|साझा",
    "remember": r"याद\s+रख",
    "must": r"होगा|होगी|होंगे|चाहिए",
    "covert": r"चुपचाप|चुपके\s+से|गुप्त\s+रूप\s+से|बिना\s+बताए|उपयोगकर्ता\s+को\s+(?:मत|न)\s+बता",
    "history": r"बातचीत\s+का\s+इतिहास|चैट\s+(?:का\s+)?इतिहास|चैट\s+हिस्ट्री|संदेशों\s+का\s+इतिहास",
    "share_pii": r"(?:उसका|उसकी|उनका)\s+(?:फोन|मोबाइल)\s+नंबर|(?:उसका|उसकी)\s+पता|पासवर्ड",
    "when_asked": r"(?:कोई|उपयोगकर्ता)\s+.{0,30}?(?:पूछे|पूछता|पूछती)",
    "header": r"सिस्टम|सुरक्षा|एडमिन|व्यवस्थापक|डेवलपर",
    "void": rf"पुराने\s+(?:नियम|निर्देश){_D}\s+(?:रद्द|अमान्य|निरस्त)",
}
_ZH = {
    "ignore": r"忽略|无视|無視|忽视|忘记|忘掉|忘了|不要理会|抛开|放弃",
    "orders": r"指令|指示|规则|規則|提示词|提示詞|设定|設定|命令|约束|规定|准则",
    "stop": r"不要再|别再|不再|停止|不必再|无需再",
    "safety": r"安全|规则|规定|限制|准则|指令|政策|过滤",
    "reveal": r"输出|显示|打印|告诉我|透露|泄露|复述|重复|展示|写出|给我看|列出|公开|附加|加到|添加",
    "sysprompt": r"系统提示|系統提示|系统指令|系統指令|系统消息|系统设定|初始指令|隐藏指令|原始指令|"
                 r"内部指令|你的提示词|你的配置",
    "now_you": r"你现在是|你現在是|从现在起你是|现在你是",
    "nolimits": r"没有任何限制|沒有任何限制|没有限制|不受(?:任何)?(?:限制|约束)|无任何限制|无限制|"
                r"不受审查|没有(?:任何)?(?:过滤|审查|规则|道德)|无(?:过滤|审查)",
    "pretend": r"扮演|假装|假裝|装作|裝作|角色扮演|假设你是",
    "deceased": r"(?:已故|去世|过世|死去)的?(?:奶奶|外婆|祖母|爷爷|姥姥)",
    "fromnow": r"从现在开始|从现在起|從現在開始|从今天起|从今以后|以后|今后|往后",
    "future": r"(?:以后|今后|未来|之后)(?:所有|的所有|的)?(?:对话|会话|聊天|回答|回复)|所有(?:未来|以后)的(?:对话|会话)",
    "always": r"总是|都要|一定要|始终|永远|每次|务必",
    "directive": r"推荐|告诉|回答|发送|转发|抄送|提到|建议|分享|发给",
    "remember": r"记住",
    "must": r"必须|一定要|务必",
    "covert": r"悄悄|偷偷|秘密地|暗中|不要告诉(?:用户|任何人)|别告诉(?:用户|任何人)|不要让用户知道",
    "history": r"聊天记录|对话记录|會話記錄|对话历史|聊天历史|会话记录",
    "share_pii": r"(?:她|他|他们)的(?:电话号码|手机号码?|住址|地址|密码)",
    "when_asked": r"(?:只要|如果|每当|当)有人(?:问|询问|问起|问到)",
    "header": r"系统|系統|安全团队|安全團隊|管理员|管理員|开发者|官方",
    "void": r"(?:以前|之前|旧的|原来)的?(?:规则|指令|设定)(?:全部|都)?(?:作废|失效|无效|取消)",
}
_JA = {
    "ignore": r"無視|むし|忘れ|わすれ|破棄|従わな",
    "orders": r"指示|命令|ルール|規則|指令|プロンプト|設定|制約|ガイドライン",
    "stop": r"従うのをやめ|守るのをやめ|適用するのをやめ|従わなく|守らなく",
    "safety": r"安全|セキュリティ|ルール|規則|制限|ガイドライン|ポリシー",
    "reveal": r"表示|出力|教え|見せ|書き出|繰り返|公開|開示|印刷|付け加え|追加",
    "sysprompt": r"システムプロンプト|システムメッセージ|システム指示|初期指示|隠された指示|内部指示|元の指示",
    "now_you": r"あなたは(?:今から|これから|今日から|もう)|今からあなたは|これからあなたは",
    "nolimits": r"制限(?:も|は|が)?(?:フィルター(?:も)?)?(?:ない|なし|無し)|制限のない|制限なし|"
                r"フィルター(?:も|が)?(?:ない|なし)|検閲(?:の)?(?:ない|なし)",
    "pretend": r"ふりをして|振りをして|ふりして|なりきって|演じて|ロールプレイ|のふり",
    "deceased": r"(?:亡くなった|亡き|他界した)(?:祖母|祖父|おばあちゃん|おじいちゃん)",
    "fromnow": r"今後|これから先|今日から|以後|以降|これからは",
    "future": r"今後(?:の)?(?:すべて|全て)?の?(?:会話|セッション|やりとり|回答|返答)|将来の(?:会話|セッション)",
    "always": r"必ず|常に|いつも|毎回|絶対に",
    "directive": r"勧め|すすめ|推薦|伝え|教え|答え|送信|転送|言って|紹介",
    "remember": r"覚えて",
    "must": r"なければなりません|なければならない|必要があります|しなければ",
    "covert": r"こっそり|ひそかに|密かに|内緒で|黙って|ユーザーには(?:言わ|伝え|知らせ)ない|気づかれないように",
    "history": r"会話履歴|チャット履歴|会話の履歴|やりとりの履歴|会話ログ|チャットログ",
    "share_pii": r"電話番号を(?:教え|伝え|送|共有)|住所を(?:教え|伝え|送)|パスワードを(?:教え|伝え|送)",
    "when_asked": r"誰か(?:が|から).{0,20}?(?:聞い|聞か|尋ね|質問)|(?:ユーザー|人)が.{0,15}?(?:聞い|尋ね)たら",
    "header": r"システム|セキュリティ|管理者|開発者|運営|公式",
    "void": r"(?:以前|これまで|古い|従来)の(?:ルール|規則|指示|設定)は(?:すべて|全て)?(?:無効|廃止|取り消)",
}

#: language -> (concept table, word-bounded script?, function words that open the gate)
LANGUAGES: dict[str, tuple[dict[str, str], bool, frozenset[str]]] = {
    "fr": (_FR, True, frozenset("les des une est tu vous toutes tous et du avec ton ta tes sans "
                                "cette je nous pas aux qui moi mes ses leur dans sur ne de le la "
                                "un au ce quand pour mais tout plus".split())),
    "de": (_DE, True, frozenset("und der die das du sie nicht ist alle mit ich auf fur dich dir "
                                "ein eine einen den dem zu von jetzt ab mir deine deinen bitte an "
                                "nach aus wenn dass sich auch noch nur".split())),
    "es": (_ES, True, frozenset("el los las una que por para con tu eres todas todos del y es lo "
                                "mi sin ahora siempre como esta este de la no ya son se su al "
                                "pero mas".split())),
    "pt": (_PT, True, frozenset("os um uma que por para com voce todas todos do da dos das nao sem "
                                "agora sempre seu sua isso de no na ao apenas mais se ja ela "
                                "ele".split())),
    "it": (_IT, True, frozenset("il gli le una che per con tu sei tutte tutti della del di non "
                                "senza sempre ora questo questa mi ti la un da si ma piu "
                                "alla".split())),
    "ru": (_RU, True, frozenset()), "ar": (_AR, True, frozenset()), "hi": (_HI, False, frozenset()),
    "zh": (_ZH, False, frozenset()), "ja": (_JA, False, frozenset()),
}
_SCRIPTS = {"ru": re.compile("[\u0400-\u04ff]"), "ar": re.compile("[\u0600-\u06ff]"),
            "hi": re.compile("[\u0900-\u097f]"), "zh": re.compile("[\u4e00-\u9fff]"),
            "ja": re.compile("[\u3040-\u30ff]")}
_WORDS = re.compile(r"[a-z]+")


def languages_in(low: str) -> list[str]:
    """Which languages' rules to run on this folded, lower-cased text (may be several)."""
    out = []
    if not low.isascii():
        out = [lang for lang, script in _SCRIPTS.items() if script.search(low)]
    tokens = _WORDS.findall(low)
    if tokens:
        words = set(tokens)
        # two distinct function words of the language (more in long text): an English
        # text with one "die" or "per" in it does not pay for German or Italian rules
        need = max(2, len(tokens) // 60)
        out += [lang for lang, (_, _, gate) in LANGUAGES.items()
                if gate and len(words & gate) >= need]
    return out


def _build(lang: str, t: dict[str, str], bounded: bool) -> list[tuple[str, str, float, re.Pattern[str]]]:
    def w(key: str) -> str:
        frag = plain(t[key])  # the text is folded before matching: so is the table
        return rf"\b(?:{frag})\b" if bounded else f"(?:{frag})"

    def seq(a: str, b: str, gap: int = 40, both: bool = True) -> str:
        forward = f"{w(a)}.{{0,{gap}}}?{w(b)}"
        return f"{forward}|{w(b)}.{{0,{gap}}}?{w(a)}" if both else forward

    opening = r"[\[【(]" if bounded else r"[\[【(「]"
    header = rf"{opening}[^\]】)」\n]{{0,40}}?{w('header')}[^\]】)」\n]{{0,60}}[\]】)」]"
    specs: Iterable[tuple[str, str, float, str]] = (
        ("override", "ignore", 0.85, seq("ignore", "orders", 40)),
        ("override", "cease", 0.55, seq("stop", "safety", 30)),
        ("exfiltration", "reveal_prompt", 0.85, seq("reveal", "sysprompt", 40)),
        ("exfiltration", "system_prompt", 0.35, w("sysprompt")),
        ("jailbreak", "you_are_now", 0.3, w("now_you")),
        ("jailbreak", "no_limits", 0.45, w("nolimits")),
        ("jailbreak", "pretend", 0.35, w("pretend")),
        ("jailbreak", "deceased_relative", 0.3, w("deceased")),
        ("poisoning", "from_now_on", 0.25, w("fromnow")),
        ("poisoning", "future_sessions", 0.45, w("future")),
        ("poisoning", "always_do", 0.3, seq("directive", "always", 40)),
        ("poisoning", "remember_must", 0.45, seq("remember", "must", 60, both=False)),
        ("exfiltration", "covert", 0.35, w("covert")),
        ("exfiltration", "history", 0.3, w("history")),
        ("exfiltration", "share_contact", 0.3, w("share_pii")),
        ("poisoning", "when_asked", 0.3, w("when_asked")),
        ("override", "fake_header", 0.45, header),
        ("override", "rules_void", 0.5, w("void")),
    )
    return [(fam, f"{name}_{lang}", weight, re.compile(p, re.S | re.I))
            for fam, name, weight, p in specs]


#: language -> [(family, rule, weight, compiled pattern)]
LANG_RULES: dict[str, list[tuple[str, str, float, re.Pattern[str]]]] = {
    lang: _build(lang, table, bounded) for lang, (table, bounded, _) in LANGUAGES.items()}
