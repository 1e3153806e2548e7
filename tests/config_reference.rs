//! docs/configuration.md documents every key of the configuration, and only keys that
//! exist: the keys are read from the config types themselves (the field names serde
//! deserializes), so the reference cannot drift from the code.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::Path;

use ferroflow_config::Config;
use serde::de::{
    self, value::Error, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};
use serde::Deserialize;

/// A deserializer that holds no data: it walks a type's shape and records the dotted path of
/// every struct field serde asks for, descending into nested structs, options and lists
/// (one element) and feeding neutral values to everything else.
struct Walker<'a> {
    path: String,
    keys: &'a RefCell<BTreeSet<String>>,
}

impl<'a> Walker<'a> {
    fn at(&self, field: &str) -> Walker<'a> {
        let path = if self.path.is_empty() {
            field.to_owned()
        } else {
            format!("{}.{field}", self.path)
        };
        Walker {
            path,
            keys: self.keys,
        }
    }
}

macro_rules! neutral {
    ($($method:ident => $visit:ident($($value:expr)?)),* $(,)?) => {
        $(fn $method<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
            v.$visit($($value)?)
        })*
    };
}

impl<'de> de::Deserializer<'de> for Walker<'_> {
    type Error = Error;

    neutral! {
        deserialize_any => visit_unit(),
        deserialize_bool => visit_bool(false),
        deserialize_i8 => visit_i64(0),
        deserialize_i16 => visit_i64(0),
        deserialize_i32 => visit_i64(0),
        deserialize_i64 => visit_i64(0),
        deserialize_u8 => visit_u64(0),
        deserialize_u16 => visit_u64(0),
        deserialize_u32 => visit_u64(0),
        deserialize_u64 => visit_u64(0),
        deserialize_f32 => visit_f64(0.0),
        deserialize_f64 => visit_f64(0.0),
        deserialize_char => visit_char('x'),
        deserialize_str => visit_str(""),
        deserialize_string => visit_str(""),
        deserialize_bytes => visit_bytes(b""),
        deserialize_byte_buf => visit_bytes(b""),
        deserialize_unit => visit_unit(),
        deserialize_identifier => visit_str(""),
        deserialize_ignored_any => visit_unit(),
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_some(self)
    }
    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        v: V,
    ) -> Result<V::Value, Error> {
        v.visit_unit()
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        v: V,
    ) -> Result<V::Value, Error> {
        v.visit_newtype_struct(self)
    }
    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_seq(One(Some(self)))
    }
    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, v: V) -> Result<V::Value, Error> {
        v.visit_seq(One(Some(self)))
    }
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        v: V,
    ) -> Result<V::Value, Error> {
        v.visit_seq(One(Some(self)))
    }
    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_map(Fields {
            walker: self,
            fields: &[],
        })
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        for f in fields {
            self.keys.borrow_mut().insert(self.at(f).path);
        }
        v.visit_map(Fields {
            walker: self,
            fields,
        })
    }
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        v.visit_enum(variants[0].into_deserializer())
    }
}

/// A list of one element.
struct One<'a>(Option<Walker<'a>>);

impl<'de> SeqAccess<'de> for One<'_> {
    type Error = Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.0.take().map(|w| seed.deserialize(w)).transpose()
    }
}

/// A struct's fields, each with a walker one level down.
struct Fields<'a> {
    walker: Walker<'a>,
    fields: &'static [&'static str],
}

impl<'de> MapAccess<'de> for Fields<'_> {
    type Error = Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.fields.first() {
            Some(f) => seed.deserialize((*f).into_deserializer()).map(Some),
            None => Ok(None),
        }
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let (f, rest) = self.fields.split_first().expect("a key first");
        self.fields = rest;
        seed.deserialize(self.walker.at(f))
    }
}

/// Every key of the configuration, as dotted paths (`eal.lcores`, `ports.devargs`).
///
/// A struct's field names are recorded as serde asks for the struct, before any value: a
/// field type that refuses the walker's neutral values (an address that cannot be empty)
/// stops only the descent into the fields after it. So the sections with such fields are
/// walked on their own as well.
fn config_keys() -> BTreeSet<String> {
    let keys = RefCell::new(BTreeSet::new());
    let walker = |path: &str| Walker {
        path: path.to_owned(),
        keys: &keys,
    };
    let _ = Config::deserialize(walker(""));
    let _ = ferroflow_config::NetworkConfig::deserialize(walker("networks"));
    let _ = ferroflow_config::InstanceConfig::deserialize(walker("instances"));
    let _ = ferroflow_config::MetadataConfig::deserialize(walker("metadata"));
    // After `ports` (whose tunnel `key` refuses a neutral value) in Config's field order.
    let _ = ferroflow_config::StoreConfig::deserialize(walker("store"));
    let _ = ferroflow_config::TunnelsConfig::deserialize(walker("tunnels"));
    let _ = ferroflow_config::ConntrackConfig::deserialize(walker("conntrack"));
    let _ = ferroflow_config::SecurityGroupConfig::deserialize(walker("security_groups"));
    keys.into_inner()
}

#[test]
fn every_config_key_is_documented_and_every_documented_key_exists() {
    let keys = config_keys();
    assert!(keys.len() > 40, "{keys:?}");
    for k in [
        "eal.lcores",
        "ports.devargs",
        "bridge.controllers.target",
        "datapath.auto_rebalance",
    ] {
        assert!(keys.contains(k), "the walk misses {k}: {keys:?}");
    }
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md"),
    )
    .expect("docs/configuration.md");
    // The reference's rows: `| \`section.key\` | ...`.
    let documented: BTreeSet<String> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_owned)
        .collect();
    let undocumented: Vec<&String> = keys.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "keys missing from docs/configuration.md: {undocumented:?}"
    );
    let unknown: Vec<&String> = documented.difference(&keys).collect();
    assert!(
        unknown.is_empty(),
        "docs/configuration.md documents keys that do not exist: {unknown:?}"
    );
}
