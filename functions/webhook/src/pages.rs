//! The small pages email links lead to, in the customer's language (en, sv, da, pl, pt; English
//! otherwise).

use std::sync::OnceLock;

use minijinja::{context, Environment};
use serde::Serialize;
use shared::signing::TokenError;

/// A language the pages are written in (the one the campaign's dates and money are written in).
pub use shared::campaign::Lang;

fn strings(lang: Lang) -> &'static Strings {
    match lang {
        Lang::En => &EN,
        Lang::Sv => &SV,
        Lang::Da => &DA,
        Lang::Pl => &PL,
        Lang::Pt => &PT,
    }
}

struct Strings {
    thanks_title: &'static str,
    thanks_body: &'static str,
    choice_title: &'static str,
    choice_body: &'static str,
    fewer_button: &'static str,
    unsubscribe_button: &'static str,
    unsubscribed_title: &'static str,
    unsubscribed_body: &'static str,
    fewer_title: &'static str,
    fewer_body: &'static str,
    error_title: &'static str,
    malformed: &'static str,
    invalid: &'static str,
    expired: &'static str,
    wrong_purpose: &'static str,
    bad_answer: &'static str,
    bad_choice: &'static str,
    unavailable: &'static str,
    confirm_title: &'static str,
    confirm_body: &'static str,
    send_button: &'static str,
    /// Labels of the survey reasons, in [`Reason::ALL`]'s order.
    reasons: [&'static str; 6],
    /// "{score} of 10" for an NPS answer.
    score: &'static str,
}

const EN: Strings = Strings {
    thanks_title: "Thank you",
    thanks_body: "Thanks for your answer. It helps us do better.",
    choice_title: "Email preferences",
    choice_body: "Would you like fewer emails from us, or none at all?",
    fewer_button: "Send me fewer emails",
    unsubscribe_button: "Unsubscribe",
    unsubscribed_title: "You are unsubscribed",
    unsubscribed_body: "You will not receive these emails any more.",
    fewer_title: "Fewer emails",
    fewer_body: "Done. We will write to you less often.",
    error_title: "This link does not work",
    malformed: "This link is damaged. Please copy the whole link from the email.",
    invalid: "This link is not valid.",
    expired: "This link has expired.",
    wrong_purpose: "This link is meant for something else.",
    bad_answer: "We could not read your answer. Please use a link from the email.",
    bad_choice: "Please choose one of the options.",
    unavailable: "Something went wrong on our side. Please try again in a few minutes.",
    confirm_title: "Your answer",
    confirm_body: "Send this answer? One click and it is recorded.",
    send_button: "Send my answer",
    reasons: [
        "It got too expensive",
        "I had a bad experience",
        "The products were hard to figure out",
        "I simply forgot about you",
        "I wasn't happy with the quality",
        "Something else",
    ],
    score: "{score} of 10",
};

const SV: Strings = Strings {
    thanks_title: "Tack",
    thanks_body: "Tack för ditt svar. Det hjälper oss att bli bättre.",
    choice_title: "E-postinställningar",
    choice_body: "Vill du få färre mejl från oss, eller inga alls?",
    fewer_button: "Skicka färre mejl",
    unsubscribe_button: "Avregistrera mig",
    unsubscribed_title: "Du är avregistrerad",
    unsubscribed_body: "Du kommer inte att få de här mejlen längre.",
    fewer_title: "Färre mejl",
    fewer_body: "Klart. Vi kommer att höra av oss mer sällan.",
    error_title: "Länken fungerar inte",
    malformed: "Länken är skadad. Kopiera hela länken från mejlet.",
    invalid: "Länken är inte giltig.",
    expired: "Länken har gått ut.",
    wrong_purpose: "Länken är avsedd för något annat.",
    bad_answer: "Vi kunde inte läsa ditt svar. Använd en länk från mejlet.",
    bad_choice: "Välj ett av alternativen.",
    unavailable: "Något gick fel hos oss. Försök igen om några minuter.",
    confirm_title: "Ditt svar",
    confirm_body: "Skicka det här svaret? Ett klick så är det registrerat.",
    send_button: "Skicka mitt svar",
    reasons: [
        "Det blev för dyrt",
        "Jag hade en dålig upplevelse",
        "Produkterna var svåra att förstå sig på",
        "Jag glömde helt enkelt bort er",
        "Jag var inte nöjd med kvaliteten",
        "Något annat",
    ],
    score: "{score} av 10",
};

const DA: Strings = Strings {
    thanks_title: "Tak",
    thanks_body: "Tak for dit svar. Det hjælper os med at blive bedre.",
    choice_title: "E-mailindstillinger",
    choice_body: "Vil du have færre e-mails fra os, eller slet ingen?",
    fewer_button: "Send mig færre e-mails",
    unsubscribe_button: "Afmeld",
    unsubscribed_title: "Du er afmeldt",
    unsubscribed_body: "Du modtager ikke disse e-mails mere.",
    fewer_title: "Færre e-mails",
    fewer_body: "Sådan. Vi skriver til dig sjældnere.",
    error_title: "Linket virker ikke",
    malformed: "Linket er beskadiget. Kopiér hele linket fra e-mailen.",
    invalid: "Linket er ikke gyldigt.",
    expired: "Linket er udløbet.",
    wrong_purpose: "Linket er beregnet til noget andet.",
    bad_answer: "Vi kunne ikke læse dit svar. Brug et link fra e-mailen.",
    bad_choice: "Vælg en af mulighederne.",
    unavailable: "Noget gik galt hos os. Prøv igen om et par minutter.",
    confirm_title: "Dit svar",
    confirm_body: "Send dette svar? Et klik, så er det registreret.",
    send_button: "Send mit svar",
    reasons: [
        "Det blev for dyrt",
        "Jeg havde en dårlig oplevelse",
        "Produkterne var svære at finde ud af",
        "Jeg glemte jer simpelthen",
        "Jeg var ikke tilfreds med kvaliteten",
        "Noget andet",
    ],
    score: "{score} ud af 10",
};

const PL: Strings = Strings {
    thanks_title: "Dziękujemy",
    thanks_body: "Dziękujemy za odpowiedź. Pomoże nam działać lepiej.",
    choice_title: "Ustawienia e-maili",
    choice_body: "Chcesz dostawać od nas mniej e-maili czy wcale?",
    fewer_button: "Wysyłajcie mi mniej e-maili",
    unsubscribe_button: "Wypisz mnie",
    unsubscribed_title: "Wypisano Cię z listy",
    unsubscribed_body: "Nie będziesz już otrzymywać tych e-maili.",
    fewer_title: "Mniej e-maili",
    fewer_body: "Gotowe. Będziemy pisać do Ciebie rzadziej.",
    error_title: "Ten link nie działa",
    malformed: "Ten link jest uszkodzony. Skopiuj cały link z e-maila.",
    invalid: "Ten link jest nieprawidłowy.",
    expired: "Ten link wygasł.",
    wrong_purpose: "Ten link służy do czegoś innego.",
    bad_answer: "Nie udało się odczytać Twojej odpowiedzi. Użyj linku z e-maila.",
    bad_choice: "Wybierz jedną z opcji.",
    unavailable: "Coś poszło nie tak po naszej stronie. Spróbuj ponownie za kilka minut.",
    confirm_title: "Twoja odpowiedź",
    confirm_body: "Wysłać tę odpowiedź? Jedno kliknięcie i gotowe.",
    send_button: "Wyślij odpowiedź",
    reasons: [
        "Ceny są dla mnie za wysokie",
        "Złe doświadczenia z zamówieniem",
        "Produkty okazały się zbyt skomplikowane",
        "Po prostu wypadło mi to z głowy",
        "Jakość mnie nie zadowoliła",
        "Inny powód",
    ],
    score: "{score} na 10",
};

const PT: Strings = Strings {
    thanks_title: "Obrigado",
    thanks_body: "Obrigado pela sua resposta. Ajuda-nos a melhorar.",
    choice_title: "Preferências de e-mail",
    choice_body: "Prefere receber menos e-mails nossos, ou nenhum?",
    fewer_button: "Enviem-me menos e-mails",
    unsubscribe_button: "Cancelar a subscrição",
    unsubscribed_title: "Subscrição cancelada",
    unsubscribed_body: "Deixará de receber estes e-mails.",
    fewer_title: "Menos e-mails",
    fewer_body: "Feito. Vamos escrever-lhe com menos frequência.",
    error_title: "Este link não funciona",
    malformed: "Este link está danificado. Copie o link completo do e-mail.",
    invalid: "Este link não é válido.",
    expired: "Este link expirou.",
    wrong_purpose: "Este link destina-se a outra coisa.",
    bad_answer: "Não conseguimos ler a sua resposta. Use um link do e-mail.",
    bad_choice: "Escolha uma das opções.",
    unavailable: "Algo correu mal do nosso lado. Tente novamente dentro de alguns minutos.",
    confirm_title: "A sua resposta",
    confirm_body: "Enviar esta resposta? Um clique e fica registada.",
    send_button: "Enviar a minha resposta",
    reasons: [
        "Ficou caro demais",
        "Tive uma má experiência",
        "Os produtos eram difíceis de entender",
        "Simplesmente esqueci",
        "A qualidade não me agradou",
        "Outro motivo",
    ],
    score: "{score} de 10",
};

const PAGE: &str = r#"<!doctype html>
<html lang="{{ lang }}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{{ title }}</title>
<style>
body { font-family: system-ui, sans-serif; background: #f6f6f4; color: #222; margin: 0; }
main { max-width: 32rem; margin: 4rem auto; padding: 2rem; background: #fff; border-radius: 8px; }
h1 { font-size: 1.4rem; margin-top: 0; }
form { display: inline-block; margin: 0.5rem 0.5rem 0 0; }
button { font-size: 1rem; padding: 0.6rem 1.2rem; border-radius: 6px; border: 1px solid #888; background: #fff; cursor: pointer; }
</style>
</head>
<body>
<main>
<h1>{{ title }}</h1>
<p>{{ message }}</p>
{%- for form in forms %}
<form method="post" action="{{ form.action }}">
<input type="hidden" name="choice" value="{{ form.choice }}">
<button type="submit">{{ form.label }}</button>
</form>
{%- endfor %}
</main>
</body>
</html>
"#;

/// The team's page of a customer's record behind a follow-up link (English: it is for the
/// shop's people, not its customers).
const FOLLOW_UP: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{{ title }}</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}th{text-align:left;padding-right:1rem}button{font-size:1rem;padding:.5rem 1rem}</style>
</head><body><h1>{{ title }}</h1>
{% if text %}<p>{{ text }}</p>{% endif %}
{% if rows %}<table>{% for r in rows %}<tr><th>{{ r[0] }}</th><td>{{ r[1] }}</td></tr>{% endfor %}</table>{% endif %}
{% if action %}<form method="post" action="?{{ action }}"><p><button type="submit">Close the follow-up</button></p></form>{% endif %}
</body></html>"#;

/// Every page's template, parsed once.
fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.add_template("page.html", PAGE)
            .expect("the page template compiles");
        env.add_template("follow_up.html", FOLLOW_UP)
            .expect("the follow-up page compiles");
        env
    })
}

/// The follow-up page: a title, a text, the record's rows and the button that closes the
/// follow-up (posting to `?{action}`), each when given.
pub(crate) fn follow_up(
    title: &str,
    text: &str,
    rows: Option<&[(&'static str, String)]>,
    action: Option<&str>,
) -> String {
    env()
        .get_template("follow_up.html")
        .and_then(|t| t.render(context! { title, text, rows, action }))
        .expect("the follow-up page renders with plain strings")
}

#[derive(Serialize)]
struct Form {
    action: String,
    choice: &'static str,
    label: &'static str,
}

/// A page: no script, ever (the policy in [`crate::http::PAGE_CSP`] allows none): whatever a
/// page changes, a person changes by pressing its button.
fn render(lang: Lang, title: &str, message: &str, forms: &[Form]) -> String {
    env()
        .get_template("page.html")
        .and_then(|t| {
            t.render(context! {
                lang => lang.code(),
                title => title,
                message => message,
                forms => forms,
            })
        })
        .expect("the page template renders with plain strings")
}

/// What a survey link answers: a reason, or an NPS score.
pub enum Shown {
    Reason(usize),
    Score(u8),
}

/// The survey link's page: the answer, and a button that posts it to `action`. Nothing is
/// recorded until a person presses it: the page runs no script, so a link scanner that fetches
/// the page, or opens it in a browser that runs scripts, answers nothing.
pub fn confirm_answer(lang: Lang, action: &str, answer: Shown) -> String {
    let s = strings(lang);
    let label = match answer {
        Shown::Reason(i) => s.reasons.get(i).copied().unwrap_or_default().to_string(),
        Shown::Score(n) => s.score.replace("{score}", &n.to_string()),
    };
    let forms = [Form {
        action: action.to_string(),
        choice: "answer",
        label: s.send_button,
    }];
    render(
        lang,
        s.confirm_title,
        &format!("{label}. {}", s.confirm_body),
        &forms,
    )
}

/// Thanks for a survey answer.
pub fn thanks(lang: Lang) -> String {
    let s = strings(lang);
    render(lang, s.thanks_title, s.thanks_body, &[])
}

/// The choice between fewer emails and none; both buttons post to `preferences_url`.
pub fn choice(lang: Lang, preferences_url: &str) -> String {
    let s = strings(lang);
    let forms = [
        Form {
            action: preferences_url.to_string(),
            choice: "fewer",
            label: s.fewer_button,
        },
        Form {
            action: preferences_url.to_string(),
            choice: "unsubscribe",
            label: s.unsubscribe_button,
        },
    ];
    render(lang, s.choice_title, s.choice_body, &forms)
}

/// The customer is unsubscribed.
pub fn unsubscribed(lang: Lang) -> String {
    let s = strings(lang);
    render(lang, s.unsubscribed_title, s.unsubscribed_body, &[])
}

/// The customer will get fewer emails.
pub fn fewer(lang: Lang) -> String {
    let s = strings(lang);
    render(lang, s.fewer_title, s.fewer_body, &[])
}

/// Why a link page could not do what was asked.
#[derive(Debug, PartialEq, Eq)]
pub enum PageError {
    Token(TokenError),
    /// The survey answer is missing or not one of the offered answers.
    BadAnswer,
    /// The preferences form did not say what to do.
    BadChoice,
    /// Our side failed; try again.
    Unavailable,
}

/// The error page for `error`.
pub fn error(lang: Lang, error: PageError) -> String {
    let s = strings(lang);
    let message = match error {
        PageError::Token(TokenError::Malformed) => s.malformed,
        PageError::Token(TokenError::Forged) => s.invalid,
        PageError::Token(TokenError::Expired) => s.expired,
        PageError::Token(TokenError::WrongPurpose) => s.wrong_purpose,
        PageError::BadAnswer => s.bad_answer,
        PageError::BadChoice => s.bad_choice,
        PageError::Unavailable => s.unavailable,
    };
    render(lang, s.error_title, message, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locales_map_to_their_language_and_unknown_ones_to_english() {
        assert_eq!(Lang::of("sv-SE"), Some(Lang::Sv));
        assert_eq!(Lang::of("pt_BR"), Some(Lang::Pt));
        assert_eq!(Lang::of("PL"), Some(Lang::Pl));
        assert_eq!(Lang::of("de"), None);
        assert_eq!(Lang::pick(["de-DE", "da"]), Lang::Da);
        assert_eq!(Lang::pick(["fr"]), Lang::En);
    }

    #[test]
    fn every_language_has_its_own_words_on_every_page() {
        let langs = [Lang::En, Lang::Sv, Lang::Da, Lang::Pl, Lang::Pt];
        for (i, a) in langs.iter().enumerate() {
            assert!(thanks(*a).contains(&format!("lang=\"{}\"", a.code())));
            for b in &langs[i + 1..] {
                assert_ne!(thanks(*a), thanks(*b).replace(b.code(), a.code()));
                assert_ne!(unsubscribed(*a), unsubscribed(*b));
                assert_ne!(
                    error(*a, PageError::Token(TokenError::Expired)),
                    error(*b, PageError::Token(TokenError::Expired))
                );
            }
        }
    }

    #[test]
    fn no_page_runs_a_script() {
        let langs = [Lang::En, Lang::Sv, Lang::Da, Lang::Pl, Lang::Pt];
        for lang in langs {
            for page in [
                confirm_answer(lang, "survey?t=a.b&a=2", Shown::Score(2)),
                confirm_answer(lang, "survey?t=a.b&a=quality", Shown::Reason(4)),
                thanks(lang),
                choice(lang, "preferences?t=a.b"),
                unsubscribed(lang),
                fewer(lang),
                error(lang, PageError::BadAnswer),
            ] {
                assert!(!page.to_ascii_lowercase().contains("<script"), "{page}");
                assert!(!page.contains("onload"), "{page}");
            }
        }
    }

    #[test]
    fn the_choice_page_posts_both_choices_and_escapes_the_address() {
        let html = choice(Lang::En, "https://x.example/v1/preferences?t=a.b&x=\"y\"");
        assert_eq!(html.matches("method=\"post\"").count(), 2);
        assert!(html.contains("value=\"fewer\""));
        assert!(html.contains("value=\"unsubscribe\""));
        assert!(!html.contains("\"y\""));
        assert!(html.contains("&amp;x="));
    }
}
