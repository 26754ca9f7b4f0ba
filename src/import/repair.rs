//! Undoing one wrong round trip through a legacy encoding: UTF-8 bytes read as Windows-1252,
//! Mac Roman or GBK and written back as UTF-8 (`DiagnÃ³stico`, `Diagn√≥stico`,
//! `Verificaci贸n`). Encoding such a line back into the encoding it went through gives the
//! original UTF-8 bytes; an undamaged line does not survive that (its `ó` becomes a lone
//! byte that is not UTF-8), so it is never touched.

use encoding_rs::{Encoding, GBK, MACINTOSH, WINDOWS_1252};

/// The encodings a runbook may have been misread through, in the order they are tried.
const SUSPECTS: [&Encoding; 3] = [WINDOWS_1252, MACINTOSH, GBK];

/// The repairs made through one encoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repair {
    /// The encoding the text had been misread as (`windows-1252`, `macintosh`, `GBK`).
    pub encoding: &'static str,
    /// Lines repaired.
    pub lines: usize,
    /// Characters restored: the non-ASCII characters of the repaired lines.
    pub characters: usize,
}

/// The text with every damaged line restored, and the repairs made (none: the text is as it
/// was given).
pub fn repair(text: &str) -> (String, Vec<Repair>) {
    let mut repairs: Vec<Repair> = Vec::new();
    let lines: Vec<String> = text
        .split('\n')
        .map(|line| match restore(line) {
            Some((encoding, restored)) => {
                let characters = restored.chars().filter(|c| !c.is_ascii()).count();
                match repairs.iter_mut().find(|r| r.encoding == encoding.name()) {
                    Some(r) => {
                        r.lines += 1;
                        r.characters += characters;
                    }
                    None => repairs.push(Repair { encoding: encoding.name(), lines: 1, characters }),
                }
                restored
            }
            None => line.to_string(),
        })
        .collect();
    (lines.join("\n"), repairs)
}

/// The line as it was before one misreading, when it is damaged. A restoration is accepted
/// only when it undoes something: fewer characters (several stood for one), or fewer CJK
/// ideographs (GBK turned two Latin bytes into one ideograph).
fn restore(line: &str) -> Option<(&'static Encoding, String)> {
    if line.is_ascii() {
        return None;
    }
    SUSPECTS.into_iter().find_map(|encoding| {
        let (bytes, _, unmappable) = encoding.encode(line);
        if unmappable {
            return None;
        }
        let restored = std::str::from_utf8(&bytes).ok()?;
        let undoes = restored.chars().count() < line.chars().count() || ideographs(restored) < ideographs(line);
        (restored != line && undoes).then(|| (encoding, restored.to_string()))
    })
}

/// CJK unified ideographs in a text.
fn ideographs(text: &str) -> usize {
    text.chars().filter(|c| ('\u{4e00}'..='\u{9fff}').contains(c)).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_misreading_is_reversed_and_named() {
        for (damaged, encoding) in
            [("DiagnÃ³stico", "windows-1252"), ("Diagn√≥stico", "macintosh"), ("Verificaci贸n", "GBK")]
        {
            let (text, repairs) = repair(damaged);
            assert!(text == "Diagnóstico" || text == "Verificación", "{damaged} → {text}");
            assert_eq!(repairs, [Repair { encoding, lines: 1, characters: 1 }], "{damaged}");
        }
    }

    #[test]
    fn an_emoji_misread_as_mac_roman_comes_back() {
        // Its first byte, 0xF0, is the Apple logo in Mac Roman: a private-use character.
        assert_eq!(repair("# \u{f8ff}üîß Operations Runbook").0, "# 🔧 Operations Runbook");
    }

    #[test]
    fn undamaged_text_is_never_repaired() {
        for text in [
            "Diagnóstico (1-2 minutos)\nVerificación → listo ✓",
            "Recuperación de desastres: ¿Continuar? ñandú, über, façade, naïve",
            "中文运维手册：数据库故障恢复",
            "日本語のランブック",
            "plain ASCII only",
            "Â°C and Ã are letters too: São Tomé",
        ] {
            let (repaired, repairs) = repair(text);
            assert_eq!(repaired, text);
            assert!(repairs.is_empty(), "{text}: {repairs:?}");
        }
    }

    #[test]
    fn only_the_damaged_lines_of_a_mixed_text_change() {
        let (text, repairs) = repair("Verificación\nDiagnÃ³stico\nAcción");
        assert_eq!(text, "Verificación\nDiagnóstico\nAcción");
        assert_eq!(repairs.iter().map(|r| r.lines).sum::<usize>(), 1);
    }
}
