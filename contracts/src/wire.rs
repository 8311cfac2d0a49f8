//! Enums that travel as strings (in JSON, in query strings, in database columns). One list of
//! `Variant = "name"` pairs drives serde, `as_str`, `parse` and `ALL`, so the names used on
//! the wire, in URLs and in storage cannot drift apart.

/// A closed set of values, each with one stable name.
pub trait WireEnum: Copy + Eq + Send + Sync + 'static {
    /// Every value, in declaration order.
    fn all() -> &'static [Self];

    /// The value's name, as it appears in JSON.
    fn as_str(self) -> &'static str;

    /// The value with this name, if there is one.
    fn parse(name: &str) -> Option<Self> {
        Self::all().iter().copied().find(|v| v.as_str() == name)
    }
}

/// Declares a string-valued wire enum: the enum with serde (and, with the `openapi` feature,
/// utoipa) derives, `ALL`, `as_str`, `parse`, `Display` and a [`WireEnum`] impl.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $wire:tt ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        $vis enum $name {
            $( $(#[$vmeta])* #[serde(rename = $wire)] $variant ),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: [$name; <[()]>::len(&[$(wire_enum!(@unit $variant)),+])] =
                [$($name::$variant),+];

            /// The wire name, as in JSON.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire),+
                }
            }

            pub fn parse(name: &str) -> Option<$name> {
                match name {
                    $($wire => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl $crate::WireEnum for $name {
            fn all() -> &'static [Self] {
                &$name::ALL
            }

            fn as_str(self) -> &'static str {
                $name::as_str(self)
            }

            fn parse(name: &str) -> Option<Self> {
                $name::parse(name)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
    (@unit $variant:ident) => { () };
}

pub(crate) use wire_enum;

#[cfg(test)]
mod tests {
    use crate::{
        EventKind, ProblemCode, ProviderKind, RunEventKind, RunMode, RunStatus, Topic,
        ValidationStatus, WireEnum,
    };

    /// serde's name, `as_str` and `parse` agree for every value of every wire enum.
    fn names_agree<T: WireEnum + serde::Serialize + std::fmt::Debug>() {
        for value in T::all() {
            let json = serde_json::to_value(value).expect("serialises");
            assert_eq!(json.as_str(), Some(value.as_str()), "{value:?}");
            assert_eq!(T::parse(value.as_str()), Some(*value));
        }
        assert_eq!(T::parse("no-such-name"), None);
    }

    #[test]
    fn every_wire_enum_has_one_name_per_value() {
        names_agree::<ProviderKind>();
        names_agree::<ValidationStatus>();
        names_agree::<RunStatus>();
        names_agree::<RunMode>();
        names_agree::<RunEventKind>();
        names_agree::<Topic>();
        names_agree::<EventKind>();
        names_agree::<ProblemCode>();
    }
}
