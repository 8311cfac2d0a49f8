//! Typed status and kind columns. A column of type `Wire<T>` stores a wire enum by its name
//! (`"queued"`, `"openai_compatible"`) and reads it back as `T`: the same names as the API,
//! converted in one place (`contracts::WireEnum`). An unknown stored name is a decode error of
//! the query (data corruption or a newer schema), reported as a 500.
//!
//! A newtype because the enums live in `contracts`, which never depends on sea-orm, and the
//! orphan rule keeps sea-orm's traits from being implemented on them here.

use std::ops::Deref;

use contracts::WireEnum;
use sea_orm::sea_query::{ArrayType, ColumnType, Nullable, StringLen, ValueType, ValueTypeErr};
use sea_orm::{ColIdx, DbErr, IntoActiveValue, QueryResult, TryGetError, TryGetable, Value};

/// A wire enum stored as its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Wire<T>(pub T);

impl<T> Deref for Wire<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: WireEnum> From<T> for Wire<T> {
    fn from(value: T) -> Wire<T> {
        Wire(value)
    }
}

impl<T: WireEnum> From<Wire<T>> for Value {
    fn from(value: Wire<T>) -> Value {
        value.0.as_str().into()
    }
}

impl<T: WireEnum> TryGetable for Wire<T> {
    fn try_get_by<I: ColIdx>(res: &QueryResult, idx: I) -> Result<Self, TryGetError> {
        let name = String::try_get_by(res, idx)?;
        T::parse(&name).map(Wire).ok_or_else(|| {
            TryGetError::DbErr(DbErr::Type(format!(
                "stored {} has an unexpected value `{name}`",
                short_type_name::<T>()
            )))
        })
    }
}

impl<T: WireEnum> ValueType for Wire<T> {
    fn try_from(value: Value) -> Result<Self, ValueTypeErr> {
        let name = <String as ValueType>::try_from(value)?;
        T::parse(&name).map(Wire).ok_or(ValueTypeErr)
    }

    fn type_name() -> String {
        short_type_name::<T>().to_owned()
    }

    fn array_type() -> ArrayType {
        ArrayType::String
    }

    fn column_type() -> ColumnType {
        ColumnType::String(StringLen::None)
    }
}

impl<T: WireEnum> Nullable for Wire<T> {
    fn null() -> Value {
        Value::String(None)
    }
}

impl<T: WireEnum> IntoActiveValue<Wire<T>> for Wire<T> {
    fn into_active_value(self) -> sea_orm::ActiveValue<Wire<T>> {
        sea_orm::ActiveValue::Set(self)
    }
}

/// `RunStatus` rather than `contracts::runs::RunStatus`, for messages.
fn short_type_name<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    full.rsplit("::").next().unwrap_or(full)
}

#[cfg(test)]
mod tests {
    use contracts::RunStatus;

    use super::*;

    #[test]
    fn values_round_trip_by_name_and_unknown_names_are_refused() {
        for status in RunStatus::ALL {
            let value = Value::from(Wire(status));
            assert_eq!(value, Value::from(status.as_str()));
            assert_eq!(
                <Wire<RunStatus> as ValueType>::try_from(value).ok(),
                Some(Wire(status))
            );
        }
        assert!(<Wire<RunStatus> as ValueType>::try_from(Value::from("paused")).is_err());
        assert_eq!(<Wire<RunStatus> as ValueType>::type_name(), "RunStatus");
    }
}
