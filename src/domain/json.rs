//! JSON read without rebuilding it: an object's members in their order, each value kept as
//! the exact text it came as (`RawValue`), so the gateway can read the few fields it needs and
//! store the rest byte for byte (big integers, number formats and key order survive).

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

/// A member name, borrowed from the input unless it had escapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key<'a>(pub Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

/// A JSON object as its members in order, values unparsed. `None` from [`RawObject::parse`]
/// when the text is valid JSON but not an object.
#[derive(Debug)]
pub struct RawObject<'a> {
    pub members: Vec<(Key<'a>, &'a RawValue)>,
}

/// Why a text is not a usable object.
#[derive(Debug, PartialEq, Eq)]
pub enum ObjectProblem {
    NotAnObject,
    /// A member name that appears twice: which one would count is up to each reader.
    Duplicate(String),
}

impl<'a> RawObject<'a> {
    /// Reads an object from a value already known to be valid JSON.
    pub fn parse(raw: &'a RawValue) -> Result<RawObject<'a>, ObjectProblem> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Vec<(Key<'de>, &'de RawValue)>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(entry) = map.next_entry::<Key<'de>, &'de RawValue>()? {
                    members.push(entry);
                }
                Ok(members)
            }
        }
        let text = raw.get();
        if !text.starts_with('{') {
            return Err(ObjectProblem::NotAnObject);
        }
        let members = serde_json::Deserializer::from_str(text)
            .deserialize_map(V)
            .map_err(|_| ObjectProblem::NotAnObject)?;
        let mut names: Vec<&str> = members.iter().map(|(k, _)| k.0.as_ref()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(ObjectProblem::Duplicate(w[0].to_string()));
        }
        Ok(RawObject { members })
    }

    /// A member's raw value.
    pub fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.members
            .iter()
            .find(|(k, _)| k.0 == name)
            .map(|(_, v)| *v)
    }

    /// A member as a string, if it is one (`Err` when present and not a string or null).
    pub fn str(&self, name: &str) -> Result<Option<Cow<'a, str>>, NotAString> {
        match self.get(name) {
            None => Ok(None),
            Some(v) if v.get() == "null" => Ok(None),
            Some(v) => match serde_json::from_str::<Key<'a>>(v.get()) {
                Ok(k) => Ok(Some(k.0)),
                Err(_) => Err(NotAString),
            },
        }
    }
}

/// A member that should be a string is something else.
#[derive(Debug, PartialEq, Eq)]
pub struct NotAString;

/// Appends `"name":` to a JSON object being written.
pub fn push_key(out: &mut String, name: &str) {
    out.push_str(&serde_json::to_string(name).expect("a string serializes"));
    out.push(':');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> &RawValue {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn members_keep_their_order_and_text() {
        let r = raw(r#"{ "z": 123456789012345678901234567890, "a\u0041": [1.50, {"y":1,"b":2}] }"#);
        let o = RawObject::parse(r).unwrap();
        let names: Vec<&str> = o.members.iter().map(|(k, _)| k.0.as_ref()).collect();
        assert_eq!(names, ["z", "aA"]);
        assert_eq!(o.get("z").unwrap().get(), "123456789012345678901234567890");
        assert_eq!(o.get("aA").unwrap().get(), r#"[1.50, {"y":1,"b":2}]"#);
    }

    #[test]
    fn not_objects_and_twice_named_members_are_refused() {
        assert_eq!(
            RawObject::parse(raw("[1]")).unwrap_err(),
            ObjectProblem::NotAnObject
        );
        assert_eq!(
            RawObject::parse(raw(r#""{""#)).unwrap_err(),
            ObjectProblem::NotAnObject
        );
        assert_eq!(
            RawObject::parse(raw(r#"{"a":1,"b":2,"a":3}"#)).unwrap_err(),
            ObjectProblem::Duplicate("a".into())
        );
    }

    #[test]
    fn strings_are_read_with_their_escapes() {
        let o = RawObject::parse(raw(r#"{"s":"a\"b","n":null,"x":5}"#)).unwrap();
        assert_eq!(o.str("s").unwrap().as_deref(), Some("a\"b"));
        assert_eq!(o.str("n").unwrap(), None);
        assert_eq!(o.str("missing").unwrap(), None);
        assert!(o.str("x").is_err());
    }
}
