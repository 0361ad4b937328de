"""accuracy page."""
import streamlit as st

st.title("Accuracy")
st.warning("This page is being built.")
