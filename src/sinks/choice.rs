//! A setting written as one of a few names (a syslog transport, a Kafka codec): each enum lists
//! its written names once, and reading, writing back and the problem that lists the choices all
//! come from that list.

/// Every written name of a setting and what it means.
pub type Names<T> = &'static [(&'static str, T)];

pub trait Choice: Copy + PartialEq + 'static {
    /// The setting's key in the sink's table.
    const KEY: &'static str;
    const DEFAULT: Self;
    /// Every value, each once, under the name the config writes.
    const CHOICES: Names<Self>;

    /// The name the config (and librdkafka, for a codec) writes for this value.
    fn name(self) -> &'static str {
        // Every value is listed (each impl's test reads them all back), so "" never shows.
        Self::CHOICES
            .iter()
            .find(|(_, value)| *value == self)
            .map_or("", |(written, _)| written)
    }
}

/// `<key>.<T::KEY>`'s value (its default when absent) as one of `T`'s choices; any other
/// value is a problem that lists them all, and the default stands in.
pub fn choose<T: Choice>(key: &str, value: Option<&str>, problems: &mut Vec<String>) -> T {
    let Some(value) = value else {
        return T::DEFAULT;
    };
    match T::CHOICES.iter().find(|(written, _)| *written == value) {
        Some(&(_, chosen)) => chosen,
        None => {
            let names: Vec<&str> = T::CHOICES.iter().map(|(written, _)| *written).collect();
            let name = T::KEY;
            problems.push(format!(
                "{key}.{name}: '{value}' is not a {name} ({})",
                names.join(" | ")
            ));
            T::DEFAULT
        }
    }
}

/// Each of `T`'s values reads back from the name it writes: for each impl's tests.
#[cfg(test)]
pub fn reads_back<T: Choice + std::fmt::Debug>() {
    for &(written, value) in T::CHOICES {
        assert_eq!(value.name(), written, "{value:?}");
        let mut problems = Vec::new();
        assert_eq!(choose::<T>("sinks[0]", Some(written), &mut problems), value);
        assert!(problems.is_empty(), "{problems:?}");
    }
}
